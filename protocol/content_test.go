package protocol_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

func TestParseContentAccepts(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("長", 4096) // 4096 characters, 12288 bytes
	tests := []struct {
		name   string
		kind   protocol.Kind
		locale string
		in     string
		want   string
	}{
		{
			name: "marquee defaults",
			kind: protocol.KindMarquee,
			in:   `{"text":{"en":"Maintenance at 10:00 UTC"}}`,
			want: `{"text":{"en":"Maintenance at 10:00 UTC"},"repeat":1,"interval_s":0}`,
		},
		{
			name: "marquee full, locales sorted, color upper-cased, no HTML escaping",
			kind: protocol.KindMarquee,
			in: ` { "color": "#ffcc0a", "interval_s": 3600, "repeat": 100,
			        "text": {"zh-CN": "维护 <b>&</b>", "en": "Maintenance <b>&</b>\nsoon"} } `,
			want: `{"text":{"en":"Maintenance <b>&</b>\nsoon","zh-CN":"维护 <b>&</b>"},"repeat":100,"interval_s":3600,"color":"#FFCC0A"}`,
		},
		{
			name: "marquee null optionals take defaults",
			kind: protocol.KindMarquee,
			in:   `{"text":{"en":"x"},"repeat":null,"interval_s":null,"color":null}`,
			want: `{"text":{"en":"x"},"repeat":1,"interval_s":0}`,
		},
		{
			name: "marquee longest text",
			kind: protocol.KindMarquee,
			in:   `{"text":{"en":"` + long + `"}}`,
			want: `{"text":{"en":"` + long + `"},"repeat":1,"interval_s":0}`,
		},
		{
			name:   "marquee in a game whose default locale is zh-CN",
			kind:   protocol.KindMarquee,
			locale: "zh-CN",
			in:     `{"text":{"zh-CN":"服务器维护"},"repeat":3,"interval_s":60}`,
			want:   `{"text":{"zh-CN":"服务器维护"},"repeat":3,"interval_s":60}`,
		},
		{
			name: "notice without link",
			kind: protocol.KindNotice,
			in:   `{"body":{"en":"Patch 1.2 is out."},"title":{"en":"Patch notes"}}`,
			want: `{"title":{"en":"Patch notes"},"body":{"en":"Patch 1.2 is out."}}`,
		},
		{
			name: "notice with link",
			kind: protocol.KindNotice,
			in:   `{"title":{"en":"Patch","de":"Patch"},"body":{"en":"Out now"},"link":"https://example.com/notes?a=1&b=2"}`,
			want: `{"title":{"de":"Patch","en":"Patch"},"body":{"en":"Out now"},"link":"https://example.com/notes?a=1&b=2"}`,
		},
		{
			name: "ad defaults",
			kind: protocol.KindAd,
			in:   `{"image_url":"https://cdn.example.com/ad.png"}`,
			want: `{"image_url":"https://cdn.example.com/ad.png","placement":"center","display_s":5}`,
		},
		{
			name: "ad full",
			kind: protocol.KindAd,
			in: `{"max_impressions":3,"display_s":3600,"placement":"right","title":{"en":"Sale"},
			      "click_url":"http://shop.example.com/sale","image_url":"https://cdn.example.com/ad.png"}`,
			want: `{"image_url":"https://cdn.example.com/ad.png","click_url":"http://shop.example.com/sale","title":{"en":"Sale"},"placement":"right","display_s":3600,"max_impressions":3}`,
		},
		{
			name: "kickout minimal",
			kind: protocol.KindKickout,
			in:   `{"reason":"login_elsewhere"}`,
			want: `{"reason":"login_elsewhere"}`,
		},
		{
			name: "kickout full keeps a zero reconnect_after_s",
			kind: protocol.KindKickout,
			in:   `{"reason":"maintenance","message":{"en":"Back at 12:00"},"reconnect_after_s":0}`,
			want: `{"reason":"maintenance","message":{"en":"Back at 12:00"},"reconnect_after_s":0}`,
		},
		{
			name: "kickout longest reconnect",
			kind: protocol.KindKickout,
			in:   `{"reason":"ban","reconnect_after_s":86400}`,
			want: `{"reason":"ban","reconnect_after_s":86400}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			locale := tt.locale
			if locale == "" {
				locale = "en"
			}
			got, err := protocol.ParseContent(tt.kind, json.RawMessage(tt.in), locale)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))

			again, err := protocol.ParseContent(tt.kind, got, locale)
			require.NoError(t, err)
			require.Equal(t, string(got), string(again), "canonical content must parse to itself")
		})
	}
}

func TestParseContentRefuses(t *testing.T) {
	t.Parallel()
	const marquee, notice, ad, kickout = protocol.KindMarquee, protocol.KindNotice, protocol.KindAd, protocol.KindKickout
	tests := []struct {
		name   string
		kind   protocol.Kind
		locale string
		in     string
		fields []string // the exact fields of the errors, in order
		msg    string   // a part of the first message
	}{
		// The content as a whole.
		{"unknown kind", "banner", "", `{"text":{"en":"x"}}`, []string{"kind"}, "one of marquee"},
		{"empty kind", "", "", `{"text":{"en":"x"}}`, []string{"kind"}, "one of"},
		{"absent content", marquee, "", ``, []string{"content"}, "required"},
		{"null content", notice, "", ` null `, []string{"content"}, "required"},
		{"array content", ad, "", `[{"image_url":"https://x.example"}]`, []string{"content"}, "JSON object"},
		{"string content", kickout, "", `"ban"`, []string{"content"}, "JSON object"},
		{"truncated", marquee, "", `{"text":{"en":"x"}`, []string{"content"}, "truncated"},
		{"syntax error", marquee, "", `{"text":{"en":"x"},}`, []string{"content"}, "not valid JSON"},
		{"trailing data", marquee, "", `{"text":{"en":"x"}} {}`, []string{"content"}, "after the JSON object"},
		{"invalid UTF-8 in a reason", kickout, "", "{\"reason\":\"ban\xff\"}", []string{"content.reason"}, "must be one of"},
		{"invalid UTF-8 in a URL", ad, "", "{\"image_url\":\"https://cdn.example.com/\xff.png\"}", []string{"content"}, "UTF-8"},

		// Unknown members and wrong types.
		{"unknown member", marquee, "", `{"text":{"en":"x"},"colour":"#FFFFFF"}`, []string{"content.colour"}, "text, repeat, interval_s, color"},
		{"unknown ad member", ad, "", `{"image_url":"https://x.example","link":"https://x.example"}`, []string{"content.link"}, "unknown member"},
		{"repeat as string", marquee, "", `{"text":{"en":"x"},"repeat":"3"}`, []string{"content.repeat"}, "must be a whole number, not a string"},
		{"repeat with a fraction", marquee, "", `{"text":{"en":"x"},"repeat":1.5}`, []string{"content.repeat"}, "not 1.5"},
		{"repeat overflowing", marquee, "", `{"text":{"en":"x"},"repeat":99999999999999999999}`, []string{"content.repeat"}, "within range"},
		{"color as number", marquee, "", `{"text":{"en":"x"},"color":16777215}`, []string{"content.color"}, "must be a string, not a number"},
		{"link as object", notice, "", `{"title":{"en":"t"},"body":{"en":"b"},"link":{}}`, []string{"content.link"}, "must be a string, not an object"},
		{"reason as array", kickout, "", `{"reason":["ban"]}`, []string{"content.reason"}, "must be a string, not an array"},
		{"display_s as boolean", ad, "", `{"image_url":"https://x.example","display_s":true}`, []string{"content.display_s"}, "not a boolean"},

		// Required members absent or null.
		{"marquee without text", marquee, "", `{"repeat":2}`, []string{"content.text"}, "is required"},
		{"marquee null text", marquee, "", `{"text":null}`, []string{"content.text"}, "is required"},
		{"notice without title and body", notice, "", `{}`, []string{"content.title", "content.body"}, "is required"},
		{"ad without image", ad, "", `{"placement":"top"}`, []string{"content.image_url"}, "is required"},
		{"ad null image", ad, "", `{"image_url":null}`, []string{"content.image_url"}, "is required"},
		{"kickout without reason", kickout, "", `{"message":{"en":"bye"}}`, []string{"content.reason"}, "is required"},

		// Ranges and enumerations.
		{"repeat 0", marquee, "", `{"text":{"en":"x"},"repeat":0}`, []string{"content.repeat"}, "between 1 and 100"},
		{"repeat 101", marquee, "", `{"text":{"en":"x"},"repeat":101}`, []string{"content.repeat"}, "between 1 and 100"},
		{"interval_s negative", marquee, "", `{"text":{"en":"x"},"interval_s":-1}`, []string{"content.interval_s"}, "between 0 and 3600"},
		{"interval_s 3601", marquee, "", `{"text":{"en":"x"},"interval_s":3601}`, []string{"content.interval_s"}, "between 0 and 3600"},
		{"color without #", marquee, "", `{"text":{"en":"x"},"color":"FFCC00"}`, []string{"content.color"}, "#RRGGBB"},
		{"color short", marquee, "", `{"text":{"en":"x"},"color":"#FC0"}`, []string{"content.color"}, "#RRGGBB"},
		{"color not hex", marquee, "", `{"text":{"en":"x"},"color":"#GGGGGG"}`, []string{"content.color"}, "#RRGGBB"},
		{"display_s 0", ad, "", `{"image_url":"https://x.example","display_s":0}`, []string{"content.display_s"}, "between 1 and 3600"},
		{"display_s 3601", ad, "", `{"image_url":"https://x.example","display_s":3601}`, []string{"content.display_s"}, "between 1 and 3600"},
		{"max_impressions 0", ad, "", `{"image_url":"https://x.example","max_impressions":0}`, []string{"content.max_impressions"}, "at least 1"},
		{"unknown placement", ad, "", `{"image_url":"https://x.example","placement":"middle"}`, []string{"content.placement"}, "center, top, bottom, left, right"},
		{"unknown reason", kickout, "", `{"reason":"cheating"}`, []string{"content.reason"}, "ban, login_elsewhere, maintenance, server_shutdown, other"},
		{"reconnect_after_s negative", kickout, "", `{"reason":"ban","reconnect_after_s":-1}`, []string{"content.reconnect_after_s"}, "between 0 and 86400"},
		{"reconnect_after_s too long", kickout, "", `{"reason":"ban","reconnect_after_s":86401}`, []string{"content.reconnect_after_s"}, "between 0 and 86400"},

		// URLs.
		{"relative image", ad, "", `{"image_url":"/ad.png"}`, []string{"content.image_url"}, "absolute http or https"},
		{"ftp image", ad, "", `{"image_url":"ftp://x.example/ad.png"}`, []string{"content.image_url"}, "absolute http or https"},
		{"javascript click", ad, "", `{"image_url":"https://x.example","click_url":"javascript:alert(1)"}`, []string{"content.click_url"}, "absolute http or https"},
		{"empty click", ad, "", `{"image_url":"https://x.example","click_url":""}`, []string{"content.click_url"}, "absolute http or https"},
		{"click without host", ad, "", `{"image_url":"https://x.example","click_url":"https:///path"}`, []string{"content.click_url"}, "absolute http or https"},
		{"click with a space", ad, "", `{"image_url":"https://x.example","click_url":"https://x.example/a b"}`, []string{"content.click_url"}, "spaces"},
		{"click with credentials", ad, "", `{"image_url":"https://x.example","click_url":"https://shop.example.com@evil.example/"}`, []string{"content.click_url"}, "user name"},
		{"link too long", notice, "", `{"title":{"en":"t"},"body":{"en":"b"},"link":"https://x.example/` + strings.Repeat("a", 2048) + `"}`, []string{"content.link"}, "at most 2048 bytes"},

		// Localized texts.
		{"text empty object", marquee, "", `{"text":{}}`, []string{"content.text"}, "at least the default locale en"},
		{"text as string", marquee, "", `{"text":"hello"}`, []string{"content.text"}, `such as {"en": "..."}`},
		{"text as array", notice, "", `{"title":["hello"],"body":{"en":"b"}}`, []string{"content.title"}, "object of texts by locale"},
		{"default locale missing", marquee, "zh-CN", `{"text":{"en":"Maintenance"}}`, []string{"content.text"}, "default locale zh-CN"},
		{"default locale missing from an optional title", ad, "de", `{"image_url":"https://x.example","title":{"en":"Sale"}}`, []string{"content.title"}, "default locale de"},
		{"bad locale key", marquee, "", `{"text":{"en":"x","english":"x"}}`, []string{"content.text.english"}, "language tag"},
		{"bad locale keys in order", marquee, "", `{"text":{"en":"x","zh_CN":"x","1":"y"}}`, []string{"content.text.1", "content.text.zh_CN"}, "language tag"},
		{"long bad locale key is shortened", marquee, "", `{"text":{"en":"x","` + strings.Repeat("a", 100) + `":"y"}}`, []string{"content.text." + strings.Repeat("a", 64) + "..."}, "language tag"},
		{"empty text", marquee, "", `{"text":{"en":""}}`, []string{"content.text.en"}, "must not be empty"},
		{"blank text", notice, "", `{"title":{"en":" \n\t"},"body":{"en":"b"}}`, []string{"content.title.en"}, "must not be empty"},
		{"null text value", marquee, "", `{"text":{"en":null}}`, []string{"content.text.en"}, "must be a string"},
		{"number text value", marquee, "", `{"text":{"en":"x","de":5}}`, []string{"content.text.de"}, "must be a string"},
		{"text too long", marquee, "", `{"text":{"en":"` + strings.Repeat("a", 4097) + `"}}`, []string{"content.text.en"}, "at most 4096 characters"},
		{"text with NUL", marquee, "", `{"text":{"en":"a\u0000b"}}`, []string{"content.text.en"}, "control characters"},
		{"text with invalid UTF-8", marquee, "", "{\"text\":{\"en\":\"ok\",\"de\":\"\xc3\x28\"}}", []string{"content.text.de"}, "valid UTF-8"},
		{"too many locales", marquee, "", `{"text":{` + manyLocales(101) + `}}`, []string{"content.text"}, "at most 100 locales"},
		{"kickout message without default", kickout, "", `{"reason":"ban","message":{"fr":"Banni"}}`, []string{"content.message"}, "default locale en"},

		// Several problems at once are all reported.
		{
			"several", marquee, "zh-CN",
			`{"text":{"en":"","x":"y"},"repeat":0,"interval_s":9999,"color":"red"}`,
			[]string{"content.text.en", "content.text.x", "content.text", "content.repeat", "content.interval_s", "content.color"},
			"must not be empty",
		},
		{
			"several ad", ad, "",
			`{"image_url":"x","click_url":"y","title":{},"placement":"nowhere","display_s":0,"max_impressions":-1}`,
			[]string{"content.image_url", "content.click_url", "content.title", "content.placement", "content.display_s", "content.max_impressions"},
			"absolute",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			locale := tt.locale
			if locale == "" {
				locale = "en"
			}
			got, err := protocol.ParseContent(tt.kind, json.RawMessage(tt.in), locale)
			require.Error(t, err)
			require.Nil(t, got)
			list, ok := fielderr.As(err)
			require.True(t, ok, "not a field error list: %v", err)
			fields := make([]string, len(list))
			for i, e := range list {
				fields[i] = e.Field
			}
			require.Equal(t, tt.fields, fields, "errors: %v", err)
			require.Contains(t, list[0].Message, tt.msg)
		})
	}
}

func TestParseContentInvalidDefaultLocale(t *testing.T) {
	t.Parallel()
	for _, locale := range []string{"", "english", "en_US"} {
		_, err := protocol.ParseContent(protocol.KindMarquee, json.RawMessage(`{"text":{"en":"x"}}`), locale)
		require.Error(t, err, locale)
		_, isList := fielderr.As(err)
		require.False(t, isList, "a bad default locale is the caller's bug, not the user's: %v", err)
	}
}

// manyLocales returns n members "aa": "x", "ab": "x", ... of valid locales.
func manyLocales(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"` + string(rune('a'+i/26)) + string(rune('a'+i%26)) + `":"x"`
	}
	parts[0] = `"en":"x"` // the game's default locale, in place of "aa"
	return strings.Join(parts, ",")
}

// fuzzKinds are the kinds FuzzParseContent picks from, including unknown ones.
var fuzzKinds = []protocol.Kind{protocol.KindMarquee, protocol.KindNotice, protocol.KindAd, protocol.KindKickout, "", "banner"}

// FuzzParseContent feeds arbitrary content to ParseContent for every kind. It must
// never panic, must refuse only with field errors, and what it accepts must be
// canonical: compact JSON that ParseContent accepts again unchanged.
func FuzzParseContent(f *testing.F) {
	for _, seed := range []struct {
		kind byte
		raw  string
	}{
		{0, `{"text":{"en":"Maintenance at 10:00"}}`},
		{0, `{"text":{"en":"x","zh-CN":"维护"},"repeat":3,"interval_s":60,"color":"#ffcc00"}`},
		{0, `{"text":{"en":"x"},"colour":"#FFFFFF"}`},
		{0, `{"text":{"en":"\ud800 <&>"},"repeat":null}`},
		{1, `{"title":{"en":"t"},"body":{"en":"b"},"link":"https://example.com/x"}`},
		{1, `{"title":{"EN":"t"},"body":{"en":""}}`},
		{2, `{"image_url":"https://cdn.example.com/a.png","click_url":"http://x.example","title":{"en":"Sale"},"placement":"top","display_s":10,"max_impressions":1}`},
		{2, `{"image_url":"https://u:p@x.example","display_s":1.5}`},
		{3, `{"reason":"ban","message":{"en":"bye"},"reconnect_after_s":0}`},
		{3, `{"reason":"other"} x`},
		{4, `{}`},
		{5, `null`},
		{0, "{\"text\":{\"en\":\"\xff\"}}"},
		{0, ``},
	} {
		f.Add(seed.kind, []byte(seed.raw))
	}
	f.Fuzz(func(t *testing.T, k byte, raw []byte) {
		kind := fuzzKinds[int(k)%len(fuzzKinds)]
		got, err := protocol.ParseContent(kind, raw, "en")
		if err != nil {
			_, ok := fielderr.As(err)
			require.True(t, ok, "not a field error: %v", err)
			require.Nil(t, got)
			return
		}
		require.True(t, json.Valid(got), "%q is not JSON", got)
		again, err := protocol.ParseContent(kind, got, "en")
		require.NoError(t, err, "canonical %s is refused", got)
		require.Equal(t, string(got), string(again), "ParseContent is not idempotent")
	})
}
