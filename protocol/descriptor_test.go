package protocol_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/protocol"
)

// protocolDescriptor is the example of protocol.md section 2.
const protocolDescriptor = `{"v":1,"game":"g1","prefix":"herald","default_locale":"en",
 "tags":{"region":{"values":["eu","na","asia"]},
         "level":{"bands":[[1,9],[10,19],[20,29],[30,39]]}},
 "updated_at":"2026-11-27T10:00:00Z"}`

func TestDecodeDescriptor(t *testing.T) {
	t.Parallel()
	d, err := protocol.DecodeDescriptor([]byte(protocolDescriptor))
	require.NoError(t, err)
	require.Equal(t, protocol.Descriptor{
		V: 1, Game: "g1", Prefix: "herald", DefaultLocale: "en",
		Tags: map[string]protocol.DescriptorTag{
			"region": {Values: []string{"eu", "na", "asia"}},
			"level":  {Bands: [][2]int64{{1, 9}, {10, 19}, {20, 29}, {30, 39}}},
		},
		UpdatedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
	}, d)
	require.Equal(t, "herald/g1/descriptor", protocol.DescriptorTopic("herald", "g1"))

	for _, bad := range []string{
		``, `[]`, `{"v":2,"game":"g1","prefix":"herald"}`,
		`{"v":1,"prefix":"herald"}`,
		`{"v":1,"game":"g/1","prefix":"herald"}`,
		`{"v":1,"game":"g1","prefix":""}`,
		`{"v":1,"game":"g1","prefix":"a/#"}`,
		`{"v":1,"game":"g1","prefix":"herald","tags":{"re gion":{"values":["eu"]}}}`,
		`{"v":1,"game":"g1","prefix":"herald","tags":{"region":{"values":["e+u"]}}}`,
		`{"v":1,"game":"g1","prefix":"herald","tags":{"level":{"bands":[[9,1]]}}}`,
		`{"v":1,"game":"g1","prefix":"herald","tags":{"level":{"bands":[[1.5,2]]}}}`,
	} {
		_, err := protocol.DecodeDescriptor([]byte(bad))
		require.Error(t, err, bad)
	}
	_, err = protocol.DecodeDescriptor([]byte(`{"v":1,"game":"g1","prefix":"acme/herald","tags":{},"later":true}`))
	require.NoError(t, err, "a prefix of several levels and an unknown member")
}

func TestSubscriptions(t *testing.T) {
	t.Parallel()
	d, err := protocol.DecodeDescriptor([]byte(protocolDescriptor))
	require.NoError(t, err)
	tests := []struct {
		name string
		a    protocol.Attributes
		want []string
	}{
		{"the example", protocol.Attributes{Player: "p1", Server: "s1", Tags: map[string]string{"region": "eu", "level": "35"}}, []string{
			"herald/g1/all/#", "herald/g1/player/p1/#", "herald/g1/server/s1/#",
			"herald/g1/tag/level/30-39/#", "herald/g1/tag/region/eu/#",
		}},
		{"no server, no tags", protocol.Attributes{Player: "p1"}, []string{"herald/g1/all/#", "herald/g1/player/p1/#"}},
		{"band edges", protocol.Attributes{Player: "p1", Tags: map[string]string{"level": "10"}}, []string{
			"herald/g1/all/#", "herald/g1/player/p1/#", "herald/g1/tag/level/10-19/#",
		}},
		{"unlisted value, number in no band, undeclared tag, not a number", protocol.Attributes{Player: "p1", Tags: map[string]string{
			"region": "sa", "level": "40", "vip": "3",
		}}, []string{"herald/g1/all/#", "herald/g1/player/p1/#"}},
		{"a band value that is not a number", protocol.Attributes{Player: "p1", Tags: map[string]string{"level": "high"}}, []string{
			"herald/g1/all/#", "herald/g1/player/p1/#",
		}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, protocol.Subscriptions(d, tt.a), tt.name)
	}

	// Before the descriptor: only what needs no tag table.
	require.Equal(t, []string{"h/g2/all/#", "h/g2/player/p1/#", "h/g2/server/s1/#"},
		protocol.Subscriptions(protocol.Descriptor{Prefix: "h", Game: "g2"},
			protocol.Attributes{Player: "p1", Server: "s1", Tags: map[string]string{"level": "35"}}))

	// Overlapping bands: every band that holds the value.
	over := protocol.Descriptor{Prefix: "h", Game: "g", Tags: map[string]protocol.DescriptorTag{"level": {Bands: [][2]int64{{1, 50}, {30, 39}}}}}
	require.Equal(t, []string{"h/g/all/#", "h/g/player/p/#", "h/g/tag/level/1-50/#", "h/g/tag/level/30-39/#"},
		protocol.Subscriptions(over, protocol.Attributes{Player: "p", Tags: map[string]string{"level": "35"}}))
}
