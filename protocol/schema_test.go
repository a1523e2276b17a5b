package protocol_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// schema compiles docs/schema/{name}.schema.json, registered under its $id so
// that nothing is fetched.
func schema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "schema", name+".schema.json"))
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	id := doc.(map[string]any)["$id"].(string)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource(id, doc))
	s, err := c.Compile(id)
	require.NoError(t, err)
	return s
}

func validate(s *jsonschema.Schema, b []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// TestSchemaEnvelopes: the envelopes Herald encodes today (EncodeEnvelope with
// ParseContent's canonical content, for every kind, with and without the optional
// members) are valid against docs/schema/envelope.schema.json, and DecodeEnvelope
// reads each of them back; so is the example of protocol.md.
func TestSchemaEnvelopes(t *testing.T) {
	t.Parallel()
	s := schema(t, "envelope")
	contents := map[protocol.Kind][]string{
		protocol.KindMarquee: {
			`{"text":{"en":"Maintenance at 10:00 UTC","zh-CN":"10:00 维护"}}`,
			`{"text":{"en":"a\nb\tc"},"repeat":100,"interval_s":3600,"color":"#ffcc00"}`,
		},
		protocol.KindNotice: {
			`{"title":{"en":"Update"},"body":{"en":"v2 is out"}}`,
			`{"title":{"en":"Update"},"body":{"en":"v2 is out"},"link":"https://example.com/notes?a=1&b=<2>"}`,
		},
		protocol.KindAd: {
			`{"image_url":"https://cdn.example.com/a.png"}`,
			`{"image_url":"http://cdn.example.com/a.png","click_url":"https://shop.example.com","title":{"en":"Sale"},"placement":"right","display_s":3600,"max_impressions":3}`,
		},
		protocol.KindKickout: {
			`{"reason":"ban"}`,
			`{"reason":"maintenance","message":{"en":"Back at 11:00"},"reconnect_after_s":0}`,
		},
	}
	rule, err := segments.ParseRule([]byte(`{"and":[{"tag":"level","between":[25,39]},{"not":{"server":["s1"]}},{"or":[{"players":["p1"]},{"tag":"region","in":["eu"]},{"everyone":true}]}]}`), "filter")
	require.NoError(t, err)
	sent := time.Date(2026, 11, 25, 10, 0, 0, 123_456_789, time.UTC)
	for kind, list := range contents {
		for i, raw := range list {
			content, err := protocol.ParseContent(kind, json.RawMessage(raw), "en")
			require.NoError(t, err, raw)
			e := protocol.Envelope{
				ID: "0193a0c4-7f11-7c39-9a51-2f1d3b5e8a10", Campaign: "0193a0c4-6b2e-7d4f-8e61-0c2a9b7d1e33",
				Kind: kind, Game: "g1", SentAt: sent, ExpiresAt: sent.Add(time.Hour), Priority: 9, Content: content,
			}
			if i == 1 { // the optional members too
				e.StartsAt, e.Filter = sent.Add(time.Minute), &rule
			}
			b, err := protocol.EncodeEnvelope(e, 0)
			require.NoError(t, err)
			require.NoError(t, validate(s, b), "%s", b)

			got, err := protocol.DecodeEnvelope(b)
			require.NoError(t, err, "%s", b)
			require.Equal(t, string(kind), string(got.Kind))
			require.Equal(t, sent.Truncate(time.Millisecond), got.SentAt)
			if e.Filter != nil {
				fb, err := json.Marshal(got.Filter)
				require.NoError(t, err)
				require.Equal(t, rule.String(), string(fb), "the filter reaches the client unchanged")
			}
		}
	}
	require.NoError(t, validate(s, []byte(protocolEnvelope)))

	// The schema is really applied: what the server must never send fails it.
	for _, bad := range []string{
		strings.Replace(protocolEnvelope, `"priority":5`, `"priority":10`, 1),
		strings.Replace(protocolEnvelope, `"repeat":3`, `"repeat":0`, 1),
		strings.Replace(protocolEnvelope, `"sent_at":"2026-11-25T10:00:00Z"`, `"sent_at":"2026-11-25T10:00:00.1234Z"`, 1),
		strings.Replace(protocolEnvelope, `"between":[25,39]`, `"between":[25]`, 1),
		strings.Replace(protocolEnvelope, `{"tag":"level","between":[25,39]}`, `{"members":true}`, 1),
		strings.Replace(protocolEnvelope, `"v":1,`, `"v":1,"extra":true,`, 1),
	} {
		require.Error(t, validate(s, []byte(bad)), bad)
	}
}

// TestSchemaReceipts: what EncodeReceipt writes is valid against
// docs/schema/receipt.schema.json, for every event.
func TestSchemaReceipts(t *testing.T) {
	t.Parallel()
	s := schema(t, "receipt")
	for _, e := range []string{protocol.EventDelivered, protocol.EventDisplayed, protocol.EventClicked, protocol.EventDismissed} {
		b := protocol.EncodeReceipt(protocol.Receipt{ID: "0193a0c4-7f11-7c39-9a51-2f1d3b5e8a10", Event: e, At: time.Now()})
		require.NoError(t, validate(s, b), "%s", b)
	}
	require.Error(t, validate(s, protocol.EncodeReceipt(protocol.Receipt{ID: "d", Event: "opened", At: time.Now()})))
}

// TestSchemaDescriptors: the descriptor of protocol.md, and a Descriptor marshaled
// from Go, are valid against docs/schema/descriptor.schema.json and decode back.
func TestSchemaDescriptors(t *testing.T) {
	t.Parallel()
	s := schema(t, "descriptor")
	require.NoError(t, validate(s, []byte(protocolDescriptor)))
	d := protocol.Descriptor{
		V: 1, Game: "g1", Prefix: "acme/herald", DefaultLocale: "zh-CN",
		Tags: map[string]protocol.DescriptorTag{
			"region": {Values: []string{"eu", "na"}},
			"level":  {Bands: [][2]int64{{1, 9}, {10, 19}}},
		},
		UpdatedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
	}
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.NoError(t, validate(s, b), "%s", b)
	back, err := protocol.DecodeDescriptor(b)
	require.NoError(t, err)
	require.Equal(t, d, back)
	b, err = json.Marshal(protocol.Descriptor{V: 1, Game: "g2", Prefix: "herald", DefaultLocale: "en"})
	require.NoError(t, err)
	require.NoError(t, validate(s, b), "a game without tags: %s", b)
	require.Error(t, validate(s, []byte(strings.Replace(protocolDescriptor, `"values":["eu","na","asia"]`, `"values":[]`, 1))))
}
