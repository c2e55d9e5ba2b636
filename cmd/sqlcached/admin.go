package main

import "net/http"

// adminAPI serves the admin console's commands as JSON under /admin/.
func adminAPI(con *console) http.Handler { return http.NotFoundHandler() }
