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

// isNotice reports whether the page answers a request that succeeded (the
// signed-out page), so showing its status would only confuse.
func (v ErrorView) isNotice() bool {
	return v.Status >= 200 && v.Status < 300
}

// sessionEnded reports whether the person shown the page while signed out
// had been signed in: after signing out (200), or when the session ran out
// before a form was sent (401; views do not import net/http).
func (v ErrorView) sessionEnded() bool {
	return v.isNotice() || v.Status == 401
}

func statusCode(n int) string { return strconv.Itoa(n) }
