package protocol_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/protocol"
)

func TestPickText(t *testing.T) {
	t.Parallel()
	texts := map[string]string{"en": "hello", "zh": "你好", "zh-TW": "您好", "pt-BR": "olá"}
	tests := []struct {
		locale, def, want string
	}{
		{"zh-TW", "en", "您好"},
		{"zh-CN", "en", "你好"},    // its language alone
		{"zh_TW", "en", "您好"},    // "_" counts as "-"
		{"ZH-tw", "en", "您好"},    // case does not matter
		{"pt-PT", "en", "hello"}, // no "pt" alone: the default
		{"pt-br", "en", "olá"},
		{"fr", "en", "hello"},
		{"", "en", "hello"},
		{"fr", "zh-TW", "您好"},
		{"fr", "", "hello"}, // no default known: the first locale in sorted order
		{"fr", "de", "hello"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, protocol.PickText(texts, tt.locale, tt.def), "%s / %s", tt.locale, tt.def)
	}
	require.Equal(t, "", protocol.PickText(nil, "en", "en"))
}
