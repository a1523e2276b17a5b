package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/valid"
)

// Kind is what a message does on the client (protocol.md section 3).
type Kind string

// The message kinds of protocol version 1.
const (
	KindMarquee Kind = "marquee"
	KindNotice  Kind = "notice"
	KindAd      Kind = "ad"
	KindKickout Kind = "kickout"
)

// Known reports whether k is one of the kinds of protocol version 1. Later
// versions may add kinds; clients ignore those.
func (k Kind) Known() bool {
	switch k {
	case KindMarquee, KindNotice, KindAd, KindKickout:
		return true
	}
	return false
}

// Localized is text in several locales: {"en": "...", "zh-CN": "..."}. Its keys
// are language tags accepted by ValidLocale; it always holds the game's
// default locale, which clients fall back to.
type Localized map[string]string

// Limits of message content. Together with the envelope limit (DefaultMaxEnvelope)
// they keep a message small enough for every client.
const (
	// contentMaxText is the longest localized text, in characters (runes).
	contentMaxText = 4096
	// contentMaxLocales bounds how many locales one localized text may hold.
	contentMaxLocales = 100
	// contentMaxURL is the longest URL, in bytes.
	contentMaxURL = 2048
	// contentPathKey is how much of an invalid locale key is echoed in an error path.
	contentPathKey = 64
)

// Placements of an ad's floating window; the first is the default.
var adPlacements = []string{"center", "top", "bottom", "left", "right"}

// Reasons a client is kicked out for.
var kickoutReasons = []string{"ban", "login_elsewhere", "maintenance", "server_shutdown", "other"}

var marqueeColor = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)

// ParseContent decodes and validates the content of a message of kind for a game whose
// default locale is defaultLocale. It returns the canonical compact JSON to store and send
// (defaults filled in), or a fielderr.List whose fields are paths under "content",
// e.g. "content.text", "content.text.zh-CN", "content.repeat", "content.click_url".
//
// Canonical means: members in the order of protocol.md section 3, locales sorted, defaults written
// out (marquee repeat 1 and interval_s 0, ad placement "center" and display_s 5),
// absent optional members omitted, a marquee color in upper case, no HTML escaping.
// An optional member given as null counts as absent. Feeding the result back to
// ParseContent returns it unchanged. An unknown kind is a field error on "kind".
// An invalid defaultLocale is a programming error and returns a plain error, not a
// fielderr.List.
//
// ParseContent does not bound the total size: callers enforce the envelope limit by
// encoding the message with EncodeEnvelope before storing it.
func ParseContent(kind Kind, raw json.RawMessage, defaultLocale string) (json.RawMessage, error) {
	if !ValidLocale(defaultLocale) {
		return nil, fmt.Errorf("protocol: parse content: invalid default locale %q", defaultLocale)
	}
	var (
		errs fielderr.List
		out  any
	)
	switch kind {
	case KindMarquee:
		out = parseMarquee(&errs, raw, defaultLocale)
	case KindNotice:
		out = parseNotice(&errs, raw, defaultLocale)
	case KindAd:
		out = parseAd(&errs, raw, defaultLocale)
	case KindKickout:
		out = parseKickout(&errs, raw, defaultLocale)
	default:
		return nil, fielderr.New("kind", "must be one of marquee, notice, ad, kickout")
	}
	if len(errs) == 0 && !utf8.Valid(raw) {
		// Localized texts name their own invalid bytes; this catches the rest
		// (URLs, reasons, keys), which the decoder would silently repair.
		errs.Add("content", "must be valid UTF-8")
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	b, err := marshalCompact(out)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s content: %w", kind, err)
	}
	return b, nil
}

// The canonical content of each kind, in the member order of protocol.md section 3.
type (
	marqueeContent struct {
		Text      Localized `json:"text"`
		Repeat    int       `json:"repeat"`
		IntervalS int       `json:"interval_s"`
		Color     string    `json:"color,omitempty"`
	}
	noticeContent struct {
		Title Localized `json:"title"`
		Body  Localized `json:"body"`
		Link  string    `json:"link,omitempty"`
	}
	adContent struct {
		ImageURL       string    `json:"image_url"`
		ClickURL       string    `json:"click_url,omitempty"`
		Title          Localized `json:"title,omitempty"`
		Placement      string    `json:"placement"`
		DisplayS       int       `json:"display_s"`
		MaxImpressions int       `json:"max_impressions,omitempty"`
	}
	kickoutContent struct {
		Reason          string    `json:"reason"`
		Message         Localized `json:"message,omitempty"`
		ReconnectAfterS *int      `json:"reconnect_after_s,omitempty"`
	}
)

func parseMarquee(errs *fielderr.List, raw json.RawMessage, defaultLocale string) any {
	var in struct {
		Text      json.RawMessage `json:"text"`
		Repeat    *int            `json:"repeat"`
		IntervalS *int            `json:"interval_s"`
		Color     *string         `json:"color"`
	}
	if !decodeContent(errs, raw, &in, "text, repeat, interval_s, color") {
		return nil
	}
	out := marqueeContent{
		Text:      parseLocalized(errs, "content.text", in.Text, defaultLocale, true),
		Repeat:    contentInt(errs, "content.repeat", in.Repeat, 1, 1, 100),
		IntervalS: contentInt(errs, "content.interval_s", in.IntervalS, 0, 0, 3600),
	}
	if in.Color != nil {
		if marqueeColor.MatchString(*in.Color) {
			out.Color = strings.ToUpper(*in.Color)
		} else {
			errs.Add("content.color", "must be a color written #RRGGBB, such as #FFCC00")
		}
	}
	return out
}

func parseNotice(errs *fielderr.List, raw json.RawMessage, defaultLocale string) any {
	var in struct {
		Title json.RawMessage `json:"title"`
		Body  json.RawMessage `json:"body"`
		Link  *string         `json:"link"`
	}
	if !decodeContent(errs, raw, &in, "title, body, link") {
		return nil
	}
	return noticeContent{
		Title: parseLocalized(errs, "content.title", in.Title, defaultLocale, true),
		Body:  parseLocalized(errs, "content.body", in.Body, defaultLocale, true),
		Link:  contentURL(errs, "content.link", in.Link, false),
	}
}

func parseAd(errs *fielderr.List, raw json.RawMessage, defaultLocale string) any {
	var in struct {
		ImageURL       *string         `json:"image_url"`
		ClickURL       *string         `json:"click_url"`
		Title          json.RawMessage `json:"title"`
		Placement      *string         `json:"placement"`
		DisplayS       *int            `json:"display_s"`
		MaxImpressions *int            `json:"max_impressions"`
	}
	if !decodeContent(errs, raw, &in, "image_url, click_url, title, placement, display_s, max_impressions") {
		return nil
	}
	out := adContent{
		ImageURL:  contentURL(errs, "content.image_url", in.ImageURL, true),
		ClickURL:  contentURL(errs, "content.click_url", in.ClickURL, false),
		Title:     parseLocalized(errs, "content.title", in.Title, defaultLocale, false),
		Placement: contentEnum(errs, "content.placement", in.Placement, adPlacements, false),
		DisplayS:  contentInt(errs, "content.display_s", in.DisplayS, 5, 1, 3600),
	}
	if in.MaxImpressions != nil {
		if *in.MaxImpressions < 1 {
			errs.Add("content.max_impressions", "must be at least 1")
		}
		out.MaxImpressions = *in.MaxImpressions
	}
	return out
}

func parseKickout(errs *fielderr.List, raw json.RawMessage, defaultLocale string) any {
	var in struct {
		Reason          *string         `json:"reason"`
		Message         json.RawMessage `json:"message"`
		ReconnectAfterS *int            `json:"reconnect_after_s"`
	}
	if !decodeContent(errs, raw, &in, "reason, message, reconnect_after_s") {
		return nil
	}
	out := kickoutContent{
		Reason:  contentEnum(errs, "content.reason", in.Reason, kickoutReasons, true),
		Message: parseLocalized(errs, "content.message", in.Message, defaultLocale, false),
	}
	if in.ReconnectAfterS != nil {
		s := contentInt(errs, "content.reconnect_after_s", in.ReconnectAfterS, 0, 0, 86400)
		out.ReconnectAfterS = &s
	}
	return out
}

// decodeContent decodes the JSON object raw into the per-kind struct dst, refusing
// unknown members, and records why it cannot in errs. members lists the members of
// the kind, for the unknown-member message.
func decodeContent(errs *fielderr.List, raw json.RawMessage, dst any, members string) bool {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	switch {
	case len(trimmed) == 0 || bytes.Equal(bytes.TrimRight(trimmed, " \t\r\n"), []byte("null")):
		errs.Add("content", "is required")
		return false
	case trimmed[0] != '{':
		errs.Add("content", "must be a JSON object")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, tokErr := dec.Token(); !errors.Is(tokErr, io.EOF) {
			errs.Add("content", "unexpected data after the JSON object")
			return false
		}
		return true
	}
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		errs.Add("content", "is truncated JSON")
	case errors.As(err, &syntax):
		errs.Add("content", "is not valid JSON: %v at byte %d", syntax, syntax.Offset)
	case errors.As(err, &typeErr):
		path := "content"
		if typeErr.Field != "" {
			path = fielderr.Join(path, typeErr.Field)
		}
		errs.Add(path, "%s", fielderr.TypeMessage(typeErr))
	default:
		if name, ok := fielderr.UnknownField(err); ok {
			errs.Add(fielderr.Join("content", name), "unknown member; the content of this kind has %s", members)
		} else {
			errs.Add("content", "cannot be read: %v", err)
		}
	}
	return false
}

// parseLocalized checks the localized text raw at path. Absent or null is refused
// when required and nil otherwise.
func parseLocalized(errs *fielderr.List, path string, raw json.RawMessage, defaultLocale string, required bool) Localized {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			errs.Add(path, "is required")
		}
		return nil
	}
	if raw[0] != '{' {
		errs.Add(path, `must be an object of texts by locale, such as {"%s": "..."}`, defaultLocale)
		return nil
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(raw, &values); err != nil {
		errs.Add(path, "must be an object of texts by locale: %v", err)
		return nil
	}
	switch {
	case len(values) == 0:
		errs.Add(path, "must hold the text in at least the default locale %s", defaultLocale)
		return nil
	case len(values) > contentMaxLocales:
		errs.Add(path, "may hold at most %d locales", contentMaxLocales)
		return nil
	}
	l := make(Localized, len(values))
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if !ValidLocale(key) {
			errs.Add(fielderr.Join(path, pathKey(key)), "is not a language tag such as en or zh-CN")
			continue
		}
		if s, ok := localizedText(errs, fielderr.Join(path, key), values[key]); ok {
			l[key] = s
		}
	}
	if _, ok := values[defaultLocale]; !ok {
		errs.Add(path, "must include the game's default locale %s", defaultLocale)
	}
	return l
}

// localizedText checks one text of a Localized: a string that passes valid.Text
// with at most contentMaxText characters (tab and line breaks allowed).
func localizedText(errs *fielderr.List, path string, raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		errs.Add(path, "must be a string")
		return "", false
	}
	if !utf8.Valid(raw) { // the decoder replaced the invalid bytes in s
		errs.Add(path, "%v", valid.ErrUTF8)
		return "", false
	}
	if err := valid.Text(s, contentMaxText); err != nil {
		errs.Add(path, "%v", err)
		return "", false
	}
	return s, true
}

// pathKey shortens an invalid locale key for use in an error path.
func pathKey(key string) string {
	if len(key) <= contentPathKey {
		return key
	}
	cut := contentPathKey
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return key[:cut] + "..."
}

// contentInt checks an optional integer in [lo, hi], returning def when absent.
func contentInt(errs *fielderr.List, path string, v *int, def, lo, hi int) int {
	if v == nil {
		return def
	}
	if *v < lo || *v > hi {
		errs.Add(path, "must be between %d and %d", lo, hi)
	}
	return *v
}

// contentEnum checks a string that must be one of allowed; an absent optional one
// is allowed[0].
func contentEnum(errs *fielderr.List, path string, v *string, allowed []string, required bool) string {
	switch {
	case v == nil && required:
		errs.Add(path, "is required: one of %s", strings.Join(allowed, ", "))
	case v == nil:
		return allowed[0]
	case !slices.Contains(allowed, *v):
		errs.Add(path, "must be one of %s", strings.Join(allowed, ", "))
	default:
		return *v
	}
	return ""
}

// contentURL checks an absolute http(s) URL without credentials, spaces or control
// characters. It returns the URL as given.
func contentURL(errs *fielderr.List, path string, v *string, required bool) string {
	if v == nil {
		if required {
			errs.Add(path, "is required")
		}
		return ""
	}
	s := *v
	if len(s) > contentMaxURL {
		errs.Add(path, "must be at most %d bytes", contentMaxURL)
		return ""
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || unicode.IsSpace(r) }) {
		errs.Add(path, "must not contain spaces or control characters")
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		errs.Add(path, "must be an absolute http or https URL")
	case u.User != nil:
		errs.Add(path, "must not carry a user name or password")
	default:
		return s
	}
	return ""
}
