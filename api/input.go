package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// withInputChecks rejects, with 422 problem details, request text that
// PostgreSQL cannot store or that huma would silently misread: invalid
// UTF-8 or NUL characters in the path, the query or JSON body strings, and
// repeated query parameters, of which huma reads only the first.
func withInputChecks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !validText(r.URL.Path) {
			writeInputProblem(w, "path", "the URL path must be valid UTF-8 without NUL characters")
			return
		}
		if loc, msg, bad := checkQuery(r.URL.RawQuery); bad {
			writeInputProblem(w, loc, msg)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			raw, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
			if err != nil {
				writeInputProblem(w, "body", "the request body could not be read")
				return
			}
			// Bodies over the limit go on to huma, which returns 413.
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(raw), r.Body))
			if len(raw) <= maxBodyBytes {
				if loc, msg, bad := checkBody(raw); bad {
					writeInputProblem(w, loc, msg)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func checkQuery(raw string) (location, message string, bad bool) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		// huma would still read the parts it can, bypassing these checks.
		return "query", "malformed query string; separate parameters with & and percent-encode reserved characters such as ; and %", true
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !validText(k) {
			return "query", "query parameter names must be valid UTF-8 without NUL characters", true
		}
		if len(values[k]) > 1 {
			return "query." + k, fmt.Sprintf("parameter %s is repeated; send several values once, comma-separated, as in status=open,pending", k), true
		}
		if !validText(values[k][0]) {
			return "query." + k, "must be valid UTF-8 text without NUL characters", true
		}
	}
	return "", "", false
}

func checkBody(raw []byte) (location, message string, bad bool) {
	if !utf8.Valid(raw) {
		return "body", "the request body must be valid UTF-8", true
	}
	if !bytes.Contains(raw, []byte(`\u0000`)) && !bytes.Contains(raw, []byte(`\U0000`)) {
		return "", "", false
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		// huma reports malformed JSON itself.
		return "", "", false
	}
	if loc, found := findNUL(doc, "body"); found {
		return loc, "text must not contain NUL characters (\\u0000)", true
	}
	return "", "", false
}

// findNUL returns the location of the first string or key in v that
// contains a NUL character.
func findNUL(v any, path string) (string, bool) {
	switch v := v.(type) {
	case string:
		return path, strings.ContainsRune(v, 0)
	case []any:
		for i, item := range v {
			if loc, ok := findNUL(item, fmt.Sprintf("%s[%d]", path, i)); ok {
				return loc, true
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.ContainsRune(k, 0) {
				return path, true
			}
			if loc, ok := findNUL(v[k], path+"."+k); ok {
				return loc, true
			}
		}
	}
	return "", false
}

// writeInputProblem writes a 422 in the shape of huma's problem details.
func writeInputProblem(w http.ResponseWriter, location, message string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusUnprocessableEntity)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"title":  http.StatusText(http.StatusUnprocessableEntity),
		"status": http.StatusUnprocessableEntity,
		"detail": "validation failed",
		"errors": []map[string]string{{"location": location, "message": message}},
	})
}
