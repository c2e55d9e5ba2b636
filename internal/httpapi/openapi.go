package httpapi

// openAPI is the OpenAPI 3.0 description GET /v1/openapi.json serves:
// every path, method and status of the API. Keep it in step with the
// handlers; TestOpenAPIListsEveryRoute checks the routes.
const openAPI = `{
	"openapi": "3.0.3",
	"info": {
		"title": "sqlcached query API",
		"version": "1.0.0",
		"description": "Asynchronous reads through sqlcached's cache: post a query, poll or stream its status, fetch its rows as JSON, CSV or NDJSON. Queries share the cache with the PostgreSQL protocol: what one runs, the other finds. Only reads are accepted; writes and DDL go through the PostgreSQL protocol."
	},
	"security": [
		{
			"basic": []
		},
		{
			"bearer": []
		}
	],
	"paths": {
		"/v1/queries": {
			"post": {
				"operationId": "submitQuery",
				"summary": "Submit a read",
				"requestBody": {
					"required": true,
					"content": {
						"application/json": {
							"schema": {
								"$ref": "#/components/schemas/QueryRequest"
							}
						}
					}
				},
				"responses": {
					"202": {
						"description": "Accepted: the job is queued. Location names it.",
						"headers": {
							"Location": {
								"schema": {
									"type": "string"
								},
								"description": "The job's path."
							}
						},
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/Status"
								}
							}
						}
					},
					"400": {
						"description": "Malformed JSON (bad_json), an unknown field (unknown_field), no sql (missing_sql), bad parameters (bad_params), no statement (bad_sql), several statements (several_statements), or an unknown database (unknown_database, sqlstate 3D000).",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"403": {
						"description": "Not a read: writes, DDL, session and utility statements are refused (read_only).",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"413": {
						"description": "The body is larger than the configured bound, 1 MiB by default (too_large).",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"429": {
						"description": "Too many jobs queued or running in this process (too_many); Retry-After says when to try again.",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"503": {
						"description": "The server is shutting down (closing).",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"401": {
						"$ref": "#/components/responses/Unauthorized"
					},
					"405": {
						"$ref": "#/components/responses/MethodNotAllowed"
					}
				}
			}
		},
		"/v1/queries/{id}": {
			"parameters": [
				{
					"name": "id",
					"in": "path",
					"required": true,
					"schema": {
						"type": "string",
						"pattern": "^[a-z2-7]{26}$"
					},
					"description": "The job id POST /v1/queries returned."
				}
			],
			"get": {
				"operationId": "getQuery",
				"summary": "A job's status",
				"responses": {
					"200": {
						"description": "The job's status.",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/Status"
								}
							}
						}
					},
					"404": {
						"$ref": "#/components/responses/NotFound"
					},
					"410": {
						"$ref": "#/components/responses/Expired"
					},
					"401": {
						"$ref": "#/components/responses/Unauthorized"
					},
					"405": {
						"$ref": "#/components/responses/MethodNotAllowed"
					}
				}
			},
			"delete": {
				"operationId": "cancelQuery",
				"summary": "Cancel a job",
				"description": "A queued or running job stops waiting and ends canceled; whether its warehouse run stops follows its rule's cancel_abandoned. A finished job is left as it is.",
				"responses": {
					"200": {
						"description": "The job's status.",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/Status"
								}
							}
						}
					},
					"202": {
						"description": "Canceled, but the job had not ended after 30 seconds; its status follows.",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/Status"
								}
							}
						}
					},
					"404": {
						"$ref": "#/components/responses/NotFound"
					},
					"409": {
						"description": "The job runs in another sqlcached process, which alone can cancel it (running_elsewhere).",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"410": {
						"$ref": "#/components/responses/Expired"
					},
					"401": {
						"$ref": "#/components/responses/Unauthorized"
					},
					"405": {
						"$ref": "#/components/responses/MethodNotAllowed"
					}
				}
			}
		},
		"/v1/queries/{id}/result": {
			"parameters": [
				{
					"name": "id",
					"in": "path",
					"required": true,
					"schema": {
						"type": "string",
						"pattern": "^[a-z2-7]{26}$"
					},
					"description": "The job id POST /v1/queries returned."
				},
				{
					"name": "format",
					"in": "query",
					"required": false,
					"schema": {
						"type": "string",
						"enum": [
							"json",
							"csv",
							"ndjson"
						]
					},
					"description": "The result's format; overrides Accept. Default json."
				}
			],
			"get": {
				"operationId": "getResult",
				"summary": "A done job's rows",
				"description": "Chosen by format, else by Accept (application/json, text/csv, application/x-ndjson), else JSON.",
				"responses": {
					"200": {
						"description": "The rows.",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/Result"
								}
							},
							"text/csv": {
								"schema": {
									"type": "string"
								},
								"example": "id,name\n1,ann\n2,\"\"\n3,\n"
							},
							"application/x-ndjson": {
								"schema": {
									"type": "string"
								},
								"example": "{\"id\":1,\"name\":\"ann\"}\n"
							}
						}
					},
					"400": {
						"description": "Unknown format (bad_format).",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"404": {
						"$ref": "#/components/responses/NotFound"
					},
					"409": {
						"description": "The job has not finished (not_ready).",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"410": {
						"$ref": "#/components/responses/Expired"
					},
					"422": {
						"description": "The job finished without rows: its error (sql_error with the warehouse's sqlstate, timeout, canceled, overloaded, result_too_large, warehouse_unavailable, internal).",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"503": {
						"description": "The job is done but its result is no longer in the cache (result_unavailable).",
						"content": {
							"application/json": {
								"schema": {
									"$ref": "#/components/schemas/ErrorBody"
								}
							}
						}
					},
					"401": {
						"$ref": "#/components/responses/Unauthorized"
					},
					"405": {
						"$ref": "#/components/responses/MethodNotAllowed"
					}
				}
			}
		},
		"/v1/queries/{id}/events": {
			"parameters": [
				{
					"name": "id",
					"in": "path",
					"required": true,
					"schema": {
						"type": "string",
						"pattern": "^[a-z2-7]{26}$"
					},
					"description": "The job id POST /v1/queries returned."
				}
			],
			"get": {
				"operationId": "queryEvents",
				"summary": "A job's status changes, as Server-Sent Events",
				"description": "One event per status, in order (event: status, data: a Status object), ending after a final status (done, failed, timed_out, canceled). A comment every 15 seconds keeps the stream open.",
				"responses": {
					"200": {
						"description": "The event stream.",
						"content": {
							"text/event-stream": {
								"schema": {
									"type": "string"
								},
								"example": "id: 1\nevent: status\ndata: {\"id\":\"...\",\"status\":\"queued\"}\n\n"
							}
						}
					},
					"404": {
						"$ref": "#/components/responses/NotFound"
					},
					"410": {
						"$ref": "#/components/responses/Expired"
					},
					"401": {
						"$ref": "#/components/responses/Unauthorized"
					},
					"405": {
						"$ref": "#/components/responses/MethodNotAllowed"
					}
				}
			}
		},
		"/v1/openapi.json": {
			"get": {
				"operationId": "openAPI",
				"summary": "This description",
				"security": [],
				"responses": {
					"200": {
						"description": "The OpenAPI description.",
						"content": {
							"application/json": {
								"schema": {
									"type": "object"
								}
							}
						}
					},
					"405": {
						"$ref": "#/components/responses/MethodNotAllowed"
					}
				}
			}
		}
	},
	"components": {
		"securitySchemes": {
			"basic": {
				"type": "http",
				"scheme": "basic"
			},
			"bearer": {
				"type": "http",
				"scheme": "bearer"
			}
		},
		"schemas": {
			"QueryRequest": {
				"type": "object",
				"additionalProperties": false,
				"required": [
					"sql"
				],
				"properties": {
					"sql": {
						"type": "string",
						"description": "One read: SELECT, VALUES, TABLE or a read-only WITH. $1, $2... are parameters."
					},
					"database": {
						"type": "string",
						"description": "The database, as psql would name it; default the user's name."
					},
					"params": {
						"type": "array",
						"items": {
							"nullable": true
						},
						"description": "Bound as text parameters of unspecified type: strings as they are, numbers as written, true/false, null as NULL, arrays and objects as their JSON text."
					},
					"labels": {
						"type": "object",
						"additionalProperties": false,
						"properties": {
							"dashboard": {
								"type": "string"
							},
							"chart": {
								"type": "string"
							}
						},
						"description": "Labels the rules match, as SET sqlcached.dashboard and sqlcached.chart."
					},
					"format": {
						"description": "Ignored: the format is chosen when the result is fetched."
					}
				}
			},
			"Status": {
				"type": "object",
				"required": [
					"id",
					"status",
					"submitted_at",
					"links"
				],
				"properties": {
					"id": {
						"type": "string"
					},
					"status": {
						"type": "string",
						"enum": [
							"queued",
							"running",
							"done",
							"failed",
							"timed_out",
							"canceled"
						]
					},
					"position": {
						"type": "integer",
						"description": "While queued: the runs waiting for a worker of the job's queue, the job included (its place at worst)."
					},
					"submitted_at": {
						"type": "string",
						"format": "date-time"
					},
					"started_at": {
						"type": "string",
						"format": "date-time"
					},
					"finished_at": {
						"type": "string",
						"format": "date-time"
					},
					"duration_ms": {
						"type": "integer",
						"description": "From submission to the end."
					},
					"cache": {
						"type": "string",
						"enum": [
							"hit_l1",
							"hit_l2",
							"miss",
							"collapsed",
							"stale",
							"bypass"
						]
					},
					"rows": {
						"type": "integer"
					},
					"error": {
						"$ref": "#/components/schemas/Error"
					},
					"expires_at": {
						"type": "string",
						"format": "date-time",
						"description": "When the result and status are dropped."
					},
					"links": {
						"type": "object",
						"properties": {
							"self": {
								"type": "string"
							},
							"result": {
								"type": "string"
							},
							"events": {
								"type": "string"
							}
						}
					}
				}
			},
			"Error": {
				"type": "object",
				"required": [
					"code",
					"message"
				],
				"properties": {
					"code": {
						"type": "string"
					},
					"message": {
						"type": "string"
					},
					"sqlstate": {
						"type": "string",
						"description": "The SQLSTATE, when the error comes from SQL."
					},
					"detail": {
						"type": "string"
					},
					"hint": {
						"type": "string"
					}
				}
			},
			"ErrorBody": {
				"type": "object",
				"required": [
					"error"
				],
				"properties": {
					"error": {
						"$ref": "#/components/schemas/Error"
					}
				}
			},
			"Result": {
				"type": "object",
				"required": [
					"columns",
					"rows",
					"row_count"
				],
				"properties": {
					"columns": {
						"type": "array",
						"items": {
							"type": "object",
							"properties": {
								"name": {
									"type": "string"
								},
								"type": {
									"type": "string",
									"nullable": true,
									"description": "PostgreSQL's type name; null for types not built in."
								},
								"oid": {
									"type": "integer"
								}
							}
						}
					},
					"rows": {
						"type": "array",
						"items": {
							"type": "array",
							"items": {
								"nullable": true
							}
						},
						"description": "Typed: int2, int4, oid and float numbers (NaN and infinities as strings), int8 numbers up to 2^53 and strings beyond, numeric strings, bool true/false, json and jsonb as JSON, NULL null, others their text form."
					},
					"row_count": {
						"type": "integer"
					},
					"command": {
						"type": "string",
						"description": "The command tag, as SELECT 3."
					}
				}
			}
		},
		"responses": {
			"Unauthorized": {
				"description": "Missing or wrong credentials (code unauthorized); the WWW-Authenticate headers name Basic and Bearer.",
				"content": {
					"application/json": {
						"schema": {
							"$ref": "#/components/schemas/ErrorBody"
						}
					}
				}
			},
			"MethodNotAllowed": {
				"description": "Method not allowed (code method_not_allowed); Allow lists the methods.",
				"content": {
					"application/json": {
						"schema": {
							"$ref": "#/components/schemas/ErrorBody"
						}
					}
				}
			},
			"NotFound": {
				"description": "No such job, or a job of another user (code not_found).",
				"content": {
					"application/json": {
						"schema": {
							"$ref": "#/components/schemas/ErrorBody"
						}
					}
				}
			},
			"Expired": {
				"description": "The job finished longer than result_ttl ago; its result is gone (code expired).",
				"content": {
					"application/json": {
						"schema": {
							"$ref": "#/components/schemas/ErrorBody"
						}
					}
				}
			}
		}
	}
}`
