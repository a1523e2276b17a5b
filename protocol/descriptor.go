package protocol

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DescriptorVersion is the "v" of the descriptors this package reads.
const DescriptorVersion = 1

// Descriptor is a game's client descriptor (protocol.md section 2), retained on
// DescriptorTopic: what a client computes its subscriptions from.
type Descriptor struct {
	V             int                      `json:"v"`
	Game          string                   `json:"game"`
	Prefix        string                   `json:"prefix"`
	DefaultLocale string                   `json:"default_locale"`
	Tags          map[string]DescriptorTag `json:"tags"`
	// ZoneTag names the tag whose values are the players' time zones, when
	// the game declares one (schedules in each player's own time).
	ZoneTag   string    `json:"zone_tag,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DescriptorTag is one tag of a game: enumerated (Values) or banded (Bands, each
// an inclusive [lo, hi]).
type DescriptorTag struct {
	Values []string   `json:"values,omitempty"`
	Bands  [][2]int64 `json:"bands,omitempty"`
}

// MarshalJSON writes d with the members of protocol.md section 2; nil Tags are
// written as an empty object, as the schema wants.
func (d Descriptor) MarshalJSON() ([]byte, error) {
	type plain Descriptor // without this method
	if d.Tags == nil {
		d.Tags = map[string]DescriptorTag{}
	}
	return json.Marshal(plain(d))
}

// DecodeDescriptor reads a descriptor payload. It returns an error for malformed
// JSON, a "v" other than 1, a game, tag name or value that is not an id of the
// topic contract (1-128 bytes of [A-Za-z0-9._~:@=-]), a prefix with a level that
// is not, or a band whose lo is above its hi: a client never subscribes to a
// topic filter such a descriptor would spell. Unknown members are ignored.
func DecodeDescriptor(payload []byte) (Descriptor, error) {
	var d Descriptor
	if err := json.Unmarshal(payload, &d); err != nil {
		return Descriptor{}, fmt.Errorf("protocol: descriptor: %w", err)
	}
	switch {
	case d.V != DescriptorVersion:
		return Descriptor{}, fmt.Errorf("protocol: descriptor: version %d, not %d", d.V, DescriptorVersion)
	case CheckID(d.Game) != nil:
		return Descriptor{}, fmt.Errorf("protocol: descriptor: game %.40q is not an id", d.Game)
	case !validPrefix(d.Prefix):
		return Descriptor{}, fmt.Errorf("protocol: descriptor: prefix %.40q is not levels of ids", d.Prefix)
	}
	for name, tag := range d.Tags {
		if CheckID(name) != nil || slices.ContainsFunc(tag.Values, notID) {
			return Descriptor{}, fmt.Errorf("protocol: descriptor: tag %.40q or one of its values is not an id", name)
		}
		for _, b := range tag.Bands {
			if b[0] > b[1] {
				return Descriptor{}, fmt.Errorf("protocol: descriptor: tag %s: band %d-%d is empty", name, b[0], b[1])
			}
		}
	}
	return d, nil
}

func notID(s string) bool { return CheckID(s) != nil }

// validPrefix reports whether prefix is one or more "/"-separated ids.
func validPrefix(prefix string) bool {
	return !slices.ContainsFunc(strings.Split(prefix, "/"), notID)
}

// Subscriptions returns the topic filters a client with attributes a subscribes to
// in the game d describes (protocol.md section 2), sorted: all/#, player/{player}/#,
// server/{server}/# when a has a server, and per tag a carries
// tag/{tag}/{value}/# for an enumerated tag whose values the descriptor lists, or
// tag/{tag}/{lo}-{hi}/# for each band of a banded tag that holds the value. A tag
// the descriptor does not declare, a value it does not list and a number in no band
// give nothing. The descriptor's own topic is not included.
//
// A Descriptor with only Prefix and Game set gives the subscriptions a client
// makes before it has read the descriptor.
func Subscriptions(d Descriptor, a Attributes) []string {
	base := d.Prefix + "/" + d.Game + "/"
	subs := []string{base + "all/#"}
	if a.Player != "" {
		subs = append(subs, base+"player/"+a.Player+"/#")
	}
	if a.Server != "" {
		subs = append(subs, base+"server/"+a.Server+"/#")
	}
	for name, value := range a.Tags {
		tag, ok := d.Tags[name]
		if !ok {
			continue
		}
		if slices.Contains(tag.Values, value) {
			subs = append(subs, base+"tag/"+name+"/"+value+"/#")
		}
		if len(tag.Bands) == 0 {
			continue
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			continue
		}
		for _, b := range tag.Bands {
			if b[0] <= n && n <= b[1] {
				subs = append(subs, base+"tag/"+name+"/"+strconv.FormatInt(b[0], 10)+"-"+strconv.FormatInt(b[1], 10)+"/#")
			}
		}
	}
	slices.Sort(subs)
	return slices.Compact(subs)
}
