package views

import "strconv"

// ErrorView is an error page: the HTTP status, a short title and a message
// that tells the person what to do next. Neither may carry internal error
// text.
type ErrorView struct {
	Status  int
	Title   string
	Message string
}

func statusCode(n int) string { return strconv.Itoa(n) }
