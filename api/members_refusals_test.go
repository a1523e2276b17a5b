package api_test

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMalformedChunkedMemberUpload: a chunked body that breaks the chunked
// encoding is the caller's error, a 400, and the previous list stays.
func TestMalformedChunkedMemberUpload(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	id := s.newMemberSegment("g1")
	path := "/v1/games/g1/segments/" + id + "/members"
	s.must(http.StatusOK, "PUT", path, "a\nb\n")

	u, err := url.Parse(s.url)
	require.NoError(t, err)
	for name, chunks := range map[string]string{
		"bad chunk size":         "6\r\np1\np2\n\r\nzz\r\np3\n\r\n0\r\n\r\n",
		"chunk longer than said": "3\r\np1\np2\n\r\n0\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", u.Host)
		require.NoError(t, err)
		_, err = conn.Write([]byte("PUT " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + s.key +
			"\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, name)
		resp.Body.Close()
		conn.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	}
	require.Equal(t, []string{"a", "b"}, s.storedMembers(id))
}

// TestMemberUploadNeedsAMembersRule: a list for a segment whose rule does not
// use it would reach nobody; it is refused with 409 and nothing is stored.
func TestMemberUploadNeedsAMembersRule(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	seg := s.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "eu", "rule": map[string]any{"tag": "region", "in": []string{"eu"}}})
	problem := s.must(http.StatusConflict, "PUT", "/v1/games/g1/segments/"+seg["id"].(string)+"/members", "p1\np2\n")
	require.Contains(t, problem["detail"], `{"members": true}`)
	require.EqualValues(t, 0, s.must(http.StatusOK, "GET", "/v1/games/g1/segments/"+seg["id"].(string), nil)["member_count"])
	require.Empty(t, s.storedMembers(seg["id"].(string)))
}
