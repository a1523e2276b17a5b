package protocol

import (
	"maps"
	"slices"
	"strings"
)

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
