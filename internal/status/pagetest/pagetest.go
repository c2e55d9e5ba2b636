// Package pagetest reads the status page as a person would, for tests:
// an element by its id, and the text it shows.
package pagetest

import (
	"html"
	"regexp"
	"strings"
)

var (
	tagRE    = regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*>`)
	inlineRE = regexp.MustCompile(`</?(?:span|b|i|code|a|small)\b[^>]*>`)
)

// Element returns the HTML of the element with id in page, from its start
// tag to its end tag; false when there is none or it does not end.
func Element(page, id string) (string, bool) {
	i := strings.Index(page, ` id="`+id+`"`)
	if i < 0 {
		return "", false
	}
	start := strings.LastIndexByte(page[:i], '<')
	first := tagRE.FindStringSubmatch(page[start:])
	if first == nil {
		return "", false
	}
	depth := 0
	for _, m := range tagRE.FindAllStringSubmatchIndex(page[start:], -1) {
		if page[start+m[4]:start+m[5]] != first[2] {
			continue
		}
		if m[3] > m[2] {
			depth--
		} else {
			depth++
		}
		if depth == 0 {
			return page[start : start+m[1]], true
		}
	}
	return "", false
}

// Visible is the text of a piece of HTML as a person reads it: inline
// tags dropped, block tags as spaces, entities decoded, spaces collapsed.
func Visible(h string) string {
	h = inlineRE.ReplaceAllString(h, "")
	h = tagRE.ReplaceAllString(h, " ")
	return strings.Join(strings.Fields(html.UnescapeString(h)), " ")
}
