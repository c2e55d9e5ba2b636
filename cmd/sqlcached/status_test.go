package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/internal/status/pagetest"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// A scripted run, then the status page as a person sees it in Chromium:
// the hit rate is the run's, the top statements are its statements with
// their numbers, the charts have this minute's marks, and an error that
// carries markup shows it as text.
func TestStatusPageShowsTheRunInABrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is needed to see the status page as a person does: apt-get install chromium (scripts/test.sh installs it)")
	}
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, `create table items (id int primary key, name text); insert into items select i, 'item ' || i from generate_series(1, 100) i`)
	pgAddr, httpAddr := serveConfig(t, fmt.Sprintf(`
auth: {method: trust}
audit: {statements: true}
backends: [{name: wh, dsn: %q, max_conns: 4}]
queues: {dash: {workers: 2, max_queued: 100}}
policies:
  - {name: dashboards, match: {tables: [items]}, ttl: 5m, queue: dash}
  - {name: other, cache: false}
`, pg.DSNUser("postgres", testenv.SuperPassword, db)))
	ctx := context.Background()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pgAddr, db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	run := func(sql string) error {
		_, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		return err
	}

	// The run fits in one minute, so that the charts have one mark for
	// all of it.
	if s := time.Now().Second(); s >= 45 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
	runMinute := time.Now().UTC().Truncate(time.Minute)
	// A dashboard's query: 1 miss, then 9 hits.
	for range 10 {
		if err := run("/* dashboard='Revenue' */ select count(*), max(name) from items where id < 50"); err != nil {
			t.Fatal(err)
		}
	}
	// One shape with three literals: 3 misses, 3 runs on the warehouse.
	for id := 1; id <= 3; id++ {
		if err := run(fmt.Sprintf("select name from items where id = %d", id)); err != nil {
			t.Fatal(err)
		}
	}
	// An error whose message holds markup.
	if err := run(`select * from "<script>document.title='pwned'</script>"`); err == nil {
		t.Fatal("a missing table answered")
	}
	if end := time.Now().UTC().Truncate(time.Minute); !end.Equal(runMinute) {
		t.Fatalf("the run took from %v to %v", runMinute, end)
	}

	url := "http://" + httpAddr + "/"
	dom := chromium(t, browser, "--dump-dom", url)
	shot := filepath.Join(screenshotDir(t), "status.png")
	chromium(t, browser, "--screenshot="+shot, url)
	t.Logf("screenshot of the status page: %s", shot)
	checkScreenshot(t, shot)

	// The headline: 9 hits of 13 statements the cache could answer.
	for id, want := range map[string]string{
		"hit-rate-total": "69.2%",
		"hit-rate-hour":  "69.2%",
		"requests-total": "14",
		"requests-hour":  "14",
		"clients-now":    "1",
		"version":        version,
	} {
		if got := pageText(t, dom, id); got != want {
			t.Errorf("#%s shows %q, want %q", id, got, want)
		}
	}
	if got := pageText(t, dom, "saved-total"); got == "0 s" {
		t.Error("9 hits saved no warehouse time")
	}

	// Top by executions: the shape that ran three times.
	runs := firstRow(t, dom, "top-runs")
	for class, want := range map[string]string{"sql": "select name from items where id = 1", "runs": "3", "requests": "3", "hitrate": "0%", "rule": "dashboards", "saved": "0 s"} {
		if runs[class] != want {
			t.Errorf("top by executions: %s %q, want %q (row %v)", class, runs[class], want, runs)
		}
	}
	// Top by time saved: the dashboard's query.
	saved := firstRow(t, dom, "top-saved")
	for class, want := range map[string]string{"dashboard": "Revenue", "runs": "1", "requests": "10", "hitrate": "90%", "rule": "dashboards"} {
		if saved[class] != want {
			t.Errorf("top by time saved: %s %q, want %q (row %v)", class, saved[class], want, saved)
		}
	}
	if saved["sql"] != "/* dashboard='Revenue' */ select count(*), max(name) from items where id < 50" {
		t.Errorf("top by time saved: statement %q", saved["sql"])
	}
	for _, row := range []map[string]string{runs, saved} {
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(row["shape"]) || row["mean"] == "" || row["p95"] == "" {
			t.Errorf("shape, mean or p95 missing: %v", row)
		}
	}

	// The charts: this minute's hit rate is the run's, and it saved time.
	minute := runMinute.Format(time.RFC3339)
	if v := markValue(t, dom, "chart-hit-rate", "circle", minute); v != "0.6923" {
		t.Errorf("hit rate chart: this minute's point is %q, want 0.6923", v)
	}
	if v := markValue(t, dom, "chart-saved", "rect", minute); v == "" {
		t.Error("time saved chart: no bar for this minute")
	} else if f, _ := strconv.ParseFloat(v, 64); f <= 0 {
		t.Errorf("time saved chart: this minute's bar is %v s", f)
	}

	// The error is there, its markup shown and not run.
	errs := pageText(t, dom, "errors")
	if !strings.Contains(errs, `postgres `+db+` 42P01 relation "<script>document.title='pwned'</script>" does not exist`) {
		t.Errorf("recent errors %q", errs)
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, "pwned</title>") {
		t.Error("an error message became a script")
	}

	if got := pageText(t, dom, "pools"); !regexp.MustCompile(`wh 0 \d+ 4 0$`).MatchString(got) {
		t.Errorf("#pools shows %q, want wh with 0 busy of at most 4, none waiting", got)
	}
	for id, want := range map[string]string{
		"queues":     "wh dash 2 0 0",
		"l1-entries": "4",
		"redis":      "not configured",
	} {
		if got := pageText(t, dom, id); !strings.Contains(got, want) {
			t.Errorf("#%s shows %q, want it to hold %q", id, got, want)
		}
	}
}

// chromium runs headless Chromium on url with flag and returns what it
// printed.
func chromium(t *testing.T, browser, flag, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--window-size=1366,900", flag, url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", flag, err, stderr.String())
	}
	return stdout.String()
}

// screenshotDir is where the screenshot stays after the test: the
// test's artifact directory under go test -artifacts, else a new
// directory under the system's temporary one.
func screenshotDir(t *testing.T) string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	dir, err := os.MkdirTemp("", "sqlcached-status-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkScreenshot checks that path is a PNG of the window with more on
// it than a blank page.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 1366 || b.Dy() != 900 {
		t.Errorf("screenshot is %dx%d, want 1366x900", b.Dx(), b.Dy())
	}
	colours := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colours) < 50 {
		t.Errorf("screenshot has %d colours: a blank or broken page", len(colours))
	}
}

var (
	cellPattern = regexp.MustCompile(`(?s)<td class="([^"]*)">(.*?)</td>`)
)

// pageElement is the HTML of the element with id in dom.
func pageElement(t *testing.T, dom, id string) string {
	t.Helper()
	el, ok := pagetest.Element(dom, id)
	if !ok {
		t.Fatalf("the page has no whole element with id %q", id)
	}
	return el
}

func pageText(t *testing.T, dom, id string) string { return pagetest.Visible(pageElement(t, dom, id)) }

// firstRow is the first row of the table of shapes with id, its cells'
// text by their last class.
func firstRow(t *testing.T, dom, id string) map[string]string {
	t.Helper()
	el := pageElement(t, dom, id)
	i := strings.Index(el, "<tr data-shape")
	if i < 0 {
		t.Fatalf("#%s has no rows: %q", id, pagetest.Visible(el))
	}
	row := el[i:]
	row = row[:strings.Index(row, "</tr>")]
	out := map[string]string{}
	for _, m := range cellPattern.FindAllStringSubmatch(row, -1) {
		classes := strings.Fields(m[1])
		name := classes[0]
		if len(classes) > 1 && classes[0] == "num" {
			name = classes[1]
		}
		out[name] = pagetest.Visible(m[2])
	}
	return out
}

// markValue is the data-value of the mark (circle or rect) of minute in
// the chart with id; "" when there is none.
func markValue(t *testing.T, dom, id, mark, minute string) string {
	t.Helper()
	el := pageElement(t, dom, id)
	re := regexp.MustCompile(`<` + mark + `\b[^>]*data-minute="` + regexp.QuoteMeta(minute) + `"[^>]*data-value="([^"]*)"`)
	if m := re.FindStringSubmatch(el); m != nil {
		return m[1]
	}
	return ""
}
