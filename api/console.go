package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/web"
)

// consoleCSP lets the console's pages run only the server's own scripts
// and styles, connect only to the server, and be framed by no one: a
// publication that smuggles markup in finds nothing to run it.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// consolePolicy sets the console's security headers on its answers, 404s
// included.
func consolePolicy(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Frame-Options", "DENY") // for browsers without frame-ancestors
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		return next(c)
	}
}

// serveConsole answers /console/NAME with the console's file of that name.
func serveConsole(c echo.Context) error {
	f, ok := web.Console[c.Param("file")]
	if !ok || f.Name == "index.html" {
		return echo.NewHTTPError(http.StatusNotFound, "no such file in the console")
	}
	f.ServeHTTP(c.Response(), c.Request())
	return nil
}
