package fingerprint

import (
	"strconv"
	"testing"
)

// dashboardQuery is a 4 KB query as a BI dashboard sends it: a remark,
// CTEs, a CASE ladder, window functions, date_trunc, JSON operators and an
// IN list.
const dashboardQuery = `-- Metabase:: userID: 12 queryType: MBQL queryHash: 3f9a0c7d2e4b5a6c8d1e0f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e
/*dashboard='revenue-overview',chart='17',application='metabase'*/
WITH orders_in_range AS (
    SELECT o.id, o.customer_id, o.product_id, o.total, o.discount, o.created_at,
           o.payload ->> 'channel' AS channel,
           (o.payload -> 'shipping' ->> 'country') AS ship_country
    FROM public.orders o
    WHERE o.created_at >= TIMESTAMP '2024-01-01 00:00:00'
      AND o.created_at < TIMESTAMP '2024-07-01 00:00:00'
      AND o.status IN ('paid', 'shipped', 'delivered', 'refunded_partial')
      AND o.product_id IN (101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120,
                           121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140,
                           141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160)
),
customer_tiers AS (
    SELECT c.id AS customer_id,
           CASE
               WHEN c.lifetime_value >= 10000 THEN 'platinum'
               WHEN c.lifetime_value >= 5000 THEN 'gold'
               WHEN c.lifetime_value >= 1000 THEN 'silver'
               WHEN c.lifetime_value >= 100 THEN 'bronze'
               ELSE 'new'
           END AS tier,
           c.region,
           c.signup_source
    FROM public.customers c
    WHERE c.deleted_at IS NULL
),
refunds AS (
    SELECT r.order_id,
           sum(r.amount) AS refunded,
           count(*) AS refund_count,
           max(r.created_at) AS last_refund_at,
           bool_or(r.reason IN ('damaged', 'not-as-described', 'late-delivery', 'duplicate-charge')) AS has_quality_issue
    FROM public.refunds r
    WHERE r.created_at >= TIMESTAMP '2024-01-01 00:00:00'
      AND r.created_at < TIMESTAMP '2024-08-01 00:00:00'
      AND r.status <> 'rejected'
    GROUP BY r.order_id
),
monthly AS (
    SELECT date_trunc('month', oir.created_at) AS month,
           ct.tier,
           ct.region,
           oir.channel,
           count(DISTINCT oir.customer_id) AS buyers,
           count(*) AS orders,
           sum(oir.total) AS revenue,
           sum(oir.discount) AS discounts,
           avg(oir.total) AS avg_order_value,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY oir.total) AS median_order_value,
           coalesce(sum(rf.refunded), 0) AS refunded,
           count(rf.order_id) FILTER (WHERE rf.has_quality_issue) AS quality_refunds
    FROM orders_in_range oir
    LEFT JOIN refunds rf ON rf.order_id = oir.id
    JOIN customer_tiers ct ON ct.customer_id = oir.customer_id
    LEFT JOIN public.products p ON p.id = oir.product_id
    WHERE coalesce(p.category, 'unknown') NOT IN ('gift-card', 'internal')
    GROUP BY 1, 2, 3, 4
)
SELECT m.month,
       m.tier,
       m.region,
       m.channel,
       m.buyers,
       m.orders,
       m.revenue,
       m.discounts,
       round(m.avg_order_value::numeric, 2) AS avg_order_value,
       m.median_order_value,
       sum(m.revenue) OVER (PARTITION BY m.tier, m.region ORDER BY m.month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cumulative_revenue,
       m.revenue - lag(m.revenue) OVER (PARTITION BY m.tier, m.region, m.channel ORDER BY m.month) AS revenue_delta,
       rank() OVER (PARTITION BY m.month ORDER BY m.revenue DESC) AS revenue_rank,
       CASE
           WHEN m.revenue > 1000000 THEN 'A'
           WHEN m.revenue > 500000 THEN 'B'
           WHEN m.revenue > 100000 THEN 'C'
           WHEN m.revenue > 10000 THEN 'D'
           ELSE 'E'
       END AS revenue_band,
       to_char(m.month, 'YYYY-MM') AS month_label,
       m.refunded,
       round(100.0 * m.refunded / nullif(m.revenue, 0), 2) AS refund_rate_pct,
       m.quality_refunds,
       m.revenue - m.refunded - m.discounts AS net_revenue
FROM monthly m
WHERE m.region IN ('EMEA', 'NA', 'LATAM', 'APAC')
  AND m.channel IS NOT NULL
ORDER BY m.month ASC, m.revenue DESC, m.tier ASC, m.region ASC
LIMIT 2000`

func TestDashboardQueryIsRepresentative(t *testing.T) {
	t.Parallel()
	if n := len(dashboardQuery); n < 4000 || n > 4400 {
		t.Errorf("dashboardQuery is %d bytes, want about 4 KB", n)
	}
	a := Analyze(dashboardQuery)
	if !a.Parsed || !a.Cacheable {
		t.Errorf("parsed %v, cacheable %v (%s)", a.Parsed, a.Cacheable, a.Reason)
	}
}

func BenchmarkAnalyzeMemoHit(b *testing.B) {
	for _, bc := range []struct{ name, sql string }{
		{"short", "SELECT count(*) FROM orders WHERE created_at > now() - interval '7 days'"},
		{"4KB", dashboardQuery},
	} {
		b.Run(bc.name, func(b *testing.B) {
			z := mustNew(b, Config{})
			z.Analyze(bc.sql)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.sql)))
			for b.Loop() {
				if a := z.Analyze(bc.sql); a == nil {
					b.Fatal("nil analysis")
				}
			}
		})
	}
}

func BenchmarkAnalyzeCold4KB(b *testing.B) {
	z := mustNew(b, Config{MemoEntries: -1})
	b.ReportAllocs()
	b.SetBytes(int64(len(dashboardQuery)))
	for b.Loop() {
		z.Analyze(dashboardQuery)
	}
}

func BenchmarkKey20Params(b *testing.B) {
	in := KeyInput{
		Backend: "pg-main", Database: "analytics", User: "metabase_reader",
		Normalized:    Analyze(dashboardQuery).Normalized[:600],
		ResultFormats: []int16{1},
		Settings: []Setting{{"DateStyle", "ISO, MDY"}, {"extra_float_digits", "3"}, {"search_path", `"$user", public`},
			{"standard_conforming_strings", "on"}, {"TimeZone", "UTC"}},
	}
	for i := range 20 {
		in.ParamOIDs = append(in.ParamOIDs, 23)
		in.Params = append(in.Params, []byte(strconv.Itoa(100000+i)))
	}
	in.ParamFormats = []int16{0}
	b.ReportAllocs()
	for b.Loop() {
		_ = in.Key()
	}
}
