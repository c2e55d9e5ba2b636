package policy

import "github.com/sqlcached/sqlcached/fingerprint"

// Labels say who asked for a statement: which dashboard, which chart,
// which tool. They select rules and never enter keys.
type Labels struct {
	Dashboard       string
	DashboardSource Source // where Dashboard came from; "" when it is empty
	Chart           string
	Tool            string
}

// Setting names a session can label itself with: SET sqlcached.dashboard
// = 'finance', or options=-c sqlcached.dashboard=finance at startup.
const (
	DashboardSetting = "sqlcached.dashboard"
	ChartSetting     = "sqlcached.chart"
)

// SessionLabels are the labels a session carries outside its statements.
type SessionLabels struct {
	SetDashboard     string // SET [LOCAL] sqlcached.dashboard in force
	StartupDashboard string // -c sqlcached.dashboard in the startup options
	SetChart         string
	StartupChart     string
	ApplicationName  string
}

// Labels resolves a statement's labels: the dashboard from the first of
// the set's sources that has one; the chart from the comments, then SET,
// then the startup options; the tool from the comments.
func (s *Set) Labels(a *fingerprint.Analysis, sess SessionLabels) Labels {
	var l Labels
	var comment fingerprint.Labels
	if a != nil {
		comment = a.Labels
	}
	for _, src := range s.sources {
		var v string
		switch src {
		case FromComment:
			v = comment.Dashboard
		case FromSet:
			v = sess.SetDashboard
		case FromStartup:
			v = sess.StartupDashboard
		case FromApplicationName:
			v = sess.ApplicationName
		}
		if v != "" {
			l.Dashboard, l.DashboardSource = v, src
			break
		}
	}
	switch {
	case comment.Chart != "":
		l.Chart = comment.Chart
	case sess.SetChart != "":
		l.Chart = sess.SetChart
	default:
		l.Chart = sess.StartupChart
	}
	l.Tool = comment.Source
	return l
}
