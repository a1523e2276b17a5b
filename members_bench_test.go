package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// BenchmarkMemberUpload streams a member list (10 million ids unless
// HERALD_BENCH_MEMBERS says otherwise) to a real herald process and reports its
// rate, the server's peak resident memory, and the ratio of its time to a bare
// pgx CopyFrom of the same ids into an unindexed table measured in the same run.
//
//	go test -run '^$' -bench MemberUpload -benchtime 1x .
func BenchmarkMemberUpload(b *testing.B) {
	members := 10_000_000
	if v := os.Getenv("HERALD_BENCH_MEMBERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("HERALD_BENCH_MEMBERS: %v", err)
		}
		members = n
	}
	dbURL := dbtest.New(b)
	base, cmd := startHeraldProcess(b, buildHerald(b), map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": brokertest.Start(b).URL})
	pid := cmd.Process.Pid
	key := adminKey(b, dbURL)

	post(b, key, base+"/v1/games", `{"id":"bench","name":"bench","default_locale":"en"}`)
	resp := post(b, key, base+"/v1/games/bench/segments", `{"name":"everyone listed","rule":{"members":true}}`)
	var seg struct{ ID string }
	if err := json.Unmarshal(resp, &seg); err != nil {
		b.Fatalf("create segment: %v: %s", err, resp)
	}

	b.ResetTimer()
	var uploadTime, copyTime time.Duration
	for b.Loop() {
		start := time.Now()
		req, err := http.NewRequest("PUT", base+"/v1/games/bench/segments/"+seg.ID+"/members", memberIDs(members))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatalf("upload: %v", err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf(`"member_count":%d`, members)) {
			b.Fatalf("upload answered %d: %s", res.StatusCode, body)
		}
		uploadTime += time.Since(start)

		start = time.Now()
		bareCopy(b, dbURL, members)
		copyTime += time.Since(start)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(members)*n/uploadTime.Seconds(), "ids/s")
	b.ReportMetric(uploadTime.Seconds()/n, "upload-s")
	b.ReportMetric(copyTime.Seconds()/n, "bare-copy-s")
	b.ReportMetric(uploadTime.Seconds()/copyTime.Seconds(), "upload/bare-copy")
	b.ReportMetric(float64(procStatusKB(b, pid, "VmHWM"))/1024, "server-peak-rss-MiB")
}

// memberIDs streams n ids, one per line, without holding them.
func memberIDs(n int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		for i := range n {
			fmt.Fprintf(w, "player-%09d\n", (i*7919)%n)
		}
		pw.CloseWithError(w.Flush())
	}()
	return pr
}

// bareCopy is the baseline: the same ids through pgx CopyFrom into an unindexed
// table, with nothing else done.
func bareCopy(b *testing.B, dbURL string, n int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TEMPORARY TABLE bare (player_id text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	i := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"bare"}, []string{"player_id"}, pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		i++
		return []any{fmt.Sprintf("player-%09d", i)}, nil
	}))
	if err != nil {
		b.Fatal(err)
	}
}

func post(b *testing.B, key, url, body string) []byte {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		b.Fatalf("POST %s: %d %s", url, res.StatusCode, out)
	}
	return out
}

// procStatusKB reads a kB field such as VmHWM (peak resident set) of a process.
func procStatusKB(b *testing.B, pid int, field string) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
