package valid

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestName(t *testing.T) {
	for _, ok := range []string{"Dragon Quest", "龍の冒険 🐉", strings.Repeat("é", MaxNameLen), "a\u200db", "عربى"} {
		if err := Name(ok); err != nil {
			t.Errorf("Name(%q) = %v, want nil", ok, err)
		}
	}
	for bad, want := range map[string]error{
		"":                                ErrEmpty,
		"   ":                             ErrBlank,
		"a\x00b":                          ErrNameControl,
		"\x1b[2Jcleared":                  ErrNameControl,
		"bell\a":                          ErrNameControl,
		"over\rwrite":                     ErrNameControl,
		"two\nlines":                      ErrNameControl,
		"tab\tbed":                        ErrNameControl,
		"del\x7f":                         ErrNameControl,
		"c1\u0085":                        ErrNameControl,
		"evil\u202egnp.exe":               ErrNameControl,
		"iso\u2066late":                   ErrNameControl,
		"para\u2029graph":                 ErrNameControl,
		"bad\xffutf8":                     ErrUTF8,
		strings.Repeat("x", MaxNameLen+1): nil, // a length error, checked below
	} {
		err := Name(bad)
		if err == nil || (want != nil && !errors.Is(err, want)) {
			t.Errorf("Name(%q) = %v, want %v", bad, err, want)
		}
	}
}

func TestText(t *testing.T) {
	for _, ok := range []string{"one", "two\nlines", "crlf\r\nends", "tab\there", strings.Repeat("x", 10)} {
		if err := Text(ok, 10); err != nil {
			t.Errorf("Text(%q) = %v, want nil", ok, err)
		}
	}
	for bad, want := range map[string]error{
		"": ErrNoText, " \n\t": ErrNoText, "a\x00": ErrTextControl, "\x1b[31m": ErrTextControl, "\xc3": ErrUTF8,
	} {
		if err := Text(bad, 10); !errors.Is(err, want) {
			t.Errorf("Text(%q) = %v, want %v", bad, err, want)
		}
	}
	if err := Text(strings.Repeat("x", 11), 10); err == nil {
		t.Error("a text over the limit passed")
	}
}

func TestTime(t *testing.T) {
	for _, ok := range []string{"2000-01-01T00:00:00Z", "2026-11-25T20:00:00+08:00", "2100-12-31T23:59:59Z", "2001-01-01T00:30:00+01:00"} {
		if _, err := ParseTime(ok); err != nil {
			t.Errorf("ParseTime(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{
		"", "yesterday", "2026-11-25", "1999-12-31T23:59:59Z", "2000-01-01T00:30:00+01:00", "2101-01-01T00:00:00Z",
		"2100-12-31T23:59:59-00:01", "9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+01:00",
	} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

// TestTimeNamesItsField checks that a Time that cannot be read fails with the
// one error encoding/json completes with the field's path.
func TestTimeNamesItsField(t *testing.T) {
	var v struct {
		Schedule struct {
			At *Time `json:"at"`
		} `json:"schedule"`
	}
	for body, kind := range map[string]string{
		`{"schedule":{"at":"9999-12-31T23:59:59-23:59"}}`: "string",
		`{"schedule":{"at":"soon"}}`:                      "string",
		`{"schedule":{"at":17}}`:                          "number",
	} {
		err := json.Unmarshal([]byte(body), &v)
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) || typeErr.Field != "schedule.at" || typeErr.Type != TimeType || typeErr.Value != kind {
			t.Errorf("%s: got %#v", body, err)
		}
	}
	if err := json.Unmarshal([]byte(`{"schedule":{"at":"2026-11-25T20:00:00+08:00"}}`), &v); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC); !v.Schedule.At.Equal(want) {
		t.Errorf("read %v, want %v", v.Schedule.At, want)
	}
	out, err := json.Marshal(v.Schedule.At)
	if err != nil || string(out) != `"2026-11-25T20:00:00+08:00"` {
		t.Errorf("written as %s, %v", out, err)
	}
}
