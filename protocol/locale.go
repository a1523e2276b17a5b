package protocol

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

// maxLocaleLength bounds a locale key.
const maxLocaleLength = 35

// locale is a BCP 47 language tag in the shape clients send: "en", "zh-CN",
// "zh-Hant-TW". It keys localized text in message content.
var locale = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

// ValidLocale reports whether s is a language tag Herald accepts as a locale
// key of localized text and as a game's default locale.
func ValidLocale(s string) bool {
	return len(s) <= maxLocaleLength && locale.MatchString(s)
}

// PickText chooses the text to show from localized text (protocol.md section 3):
// the player's locale, else its language alone ("zh" for "zh-TW"), else the game's
// default locale. Locales compare case-insensitively, and "_" counts as "-"
// ("zh_TW" is "zh-TW"), as platforms spell them either way.
//
// Herald always includes the default locale; should texts lack all three (a
// client that has not read the descriptor yet passes an empty defaultLocale),
// PickText returns the text of the first locale in sorted order rather than
// nothing, and "" only when texts is empty.
func PickText(texts map[string]string, locale, defaultLocale string) string {
	if len(texts) == 0 {
		return ""
	}
	locale = normLocale(locale)
	lang, _, _ := strings.Cut(locale, "-")
	for _, want := range []string{locale, lang, normLocale(defaultLocale)} {
		if want == "" {
			continue
		}
		if s, ok := texts[want]; ok {
			return s
		}
		for k, s := range texts {
			if normLocale(k) == want {
				return s
			}
		}
	}
	return texts[slices.Min(slices.Collect(maps.Keys(texts)))]
}

func normLocale(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "_", "-"))
}
