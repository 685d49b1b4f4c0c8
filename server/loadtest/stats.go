package loadtest

import (
	"encoding/json"
	"math"
	"slices"
	"time"
)

// Summary describes a set of latencies.
type Summary struct {
	N    int           `json:"n"`
	Min  time.Duration `json:"min_ns"`
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
}

// Summarize sorts samples in place and summarises them. An empty set gives
// the zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum float64
	for _, d := range samples {
		sum += float64(d)
	}
	return Summary{
		N:    len(samples),
		Min:  samples[0],
		Mean: time.Duration(sum / float64(len(samples))),
		P50:  Percentile(samples, 50),
		P90:  Percentile(samples, 90),
		P99:  Percentile(samples, 99),
		Max:  samples[len(samples)-1],
	}
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample with at least p% of the samples
// at or below it. It is always one of the samples, never an interpolation,
// so a p99 of 100 samples is the 99th smallest.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms formats d as milliseconds with two decimals, for JSON and tables.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*100) / 100
}

// MarshalJSON writes the summary in milliseconds, which is what a person
// reading the JSON wants; the _ns fields keep exact values.
func (s Summary) MarshalJSON() ([]byte, error) {
	type exact Summary
	return json.Marshal(struct {
		exact
		P50ms float64 `json:"p50_ms"`
		P90ms float64 `json:"p90_ms"`
		P99ms float64 `json:"p99_ms"`
		MaxMs float64 `json:"max_ms"`
	}{exact(s), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max)})
}
