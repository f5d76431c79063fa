package main

import "strings"

// semver is a module version split into its parts: vMAJOR.MINOR.PATCH,
// then an optional -PRERELEASE (pseudo-versions are prereleases), then an
// optional +BUILD, which does not take part in ordering.
type semver struct {
	core [3]string // decimal, without leading zeros
	pre  []string  // the prerelease's dot-separated identifiers
}

// parseSemver splits v, reporting false when it is not a semantic version
// as the go command writes them.
func parseSemver(v string) (semver, bool) {
	var s semver
	rest, ok := strings.CutPrefix(v, "v")
	if !ok {
		return s, false
	}
	rest, build, hasBuild := strings.Cut(rest, "+")
	if hasBuild && !validIdents(build, false) {
		return s, false
	}
	rest, pre, hasPre := strings.Cut(rest, "-")
	if hasPre {
		if !validIdents(pre, true) {
			return s, false
		}
		s.pre = strings.Split(pre, ".")
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return s, false
	}
	for i, p := range parts {
		if !isNumber(p) {
			return s, false
		}
		s.core[i] = p
	}
	return s, true
}

func validSemver(v string) bool {
	_, ok := parseSemver(v)
	return ok
}

// validIdents reports whether s is dot-separated identifiers of
// [0-9A-Za-z-]; in a prerelease, numeric ones have no leading zero.
func validIdents(s string, pre bool) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
			return false
		}
		if pre && isDigits(id) && !isNumber(id) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// isNumber reports whether s is a decimal number without leading zeros.
func isNumber(s string) bool {
	return isDigits(s) && (s == "0" || s[0] != '0')
}

// compareNumbers compares decimal numbers of any length.
func compareNumbers(a, b string) int {
	if len(a) != len(b) {
		return cmpInt(len(a), len(b))
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareSemver orders two valid versions as semantic versioning does:
// -1, 0 or +1. A version that is not valid sorts below every valid one.
func compareSemver(a, b string) int {
	sa, okA := parseSemver(a)
	sb, okB := parseSemver(b)
	if !okA || !okB {
		return cmpInt(boolInt(okA), boolInt(okB))
	}
	for i := range sa.core {
		if c := compareNumbers(sa.core[i], sb.core[i]); c != 0 {
			return c
		}
	}
	// A release is above its prereleases.
	if len(sa.pre) == 0 || len(sb.pre) == 0 {
		return cmpInt(boolInt(len(sa.pre) == 0), boolInt(len(sb.pre) == 0))
	}
	for i := 0; i < len(sa.pre) && i < len(sb.pre); i++ {
		if c := compareIdent(sa.pre[i], sb.pre[i]); c != 0 {
			return c
		}
	}
	return cmpInt(len(sa.pre), len(sb.pre))
}

// compareIdent orders prerelease identifiers: numbers numerically and
// below words, words in ASCII order.
func compareIdent(a, b string) int {
	na, nb := isDigits(a), isDigits(b)
	switch {
	case na && nb:
		return compareNumbers(a, b)
	case na != nb:
		return cmpInt(boolInt(nb), boolInt(na))
	}
	return strings.Compare(a, b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
