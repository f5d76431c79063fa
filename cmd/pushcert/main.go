// Command pushcert serves the web console and JSON API for an organization's
// Apple MDM push certificate.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pushcert:", err)
		os.Exit(1)
	}
}
