package pgformat

import (
	"math"
	"testing"
	"time"
)

func TestTextForms(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{string(AppendScaled(nil, "1250", 2)), "12.50"},
		{string(AppendScaled(nil, "-5", 2)), "-0.05"},
		{string(AppendScaled(nil, "0", 3)), "0.000"},
		{string(AppendScaled(nil, "10000", 0)), "10000"},
		{string(AppendScaled(nil, "-123456789012345678901234567890", 20)), "-1234567890.12345678901234567890"},
		{string(AppendFloat(nil, 1.5, 64)), "1.5"},
		{string(AppendFloat(nil, 1e20, 64)), "1e+20"},
		{string(AppendFloat(nil, 0.0001, 64)), "0.0001"},
		{string(AppendFloat(nil, 0.00001, 64)), "1e-05"},
		{string(AppendFloat(nil, 1234567, 32)), "1.234567e+06"},
		{string(AppendFloat(nil, math.Copysign(0, -1), 64)), "-0"},
		{string(AppendFloat(nil, math.NaN(), 64)), "NaN"},
		{string(AppendFloat(nil, math.Inf(-1), 64)), "-Infinity"},
		{string(AppendTime(nil, time.Date(2024, 1, 2, 3, 4, 5, 120000000, time.UTC), "2006-01-02 15:04:05.999999")), "2024-01-02 03:04:05.12"},
		{string(AppendTime(nil, time.Date(-43, 3, 15, 0, 0, 0, 0, time.UTC), "2006-01-02")), "0044-03-15 BC"},
		{string(AppendOffset(nil, time.Date(2024, 1, 2, 0, 0, 0, 0, time.FixedZone("", 5*3600+30*60)))), "+05:30"},
		{string(AppendOffset(nil, time.Date(2024, 1, 2, 0, 0, 0, 0, time.FixedZone("", -(3*3600+25*60+7))))), "-03:25:07"},
		{string(AppendOffset(nil, time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC))), "+00"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
