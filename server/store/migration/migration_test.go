package migration_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/qrlogin/qrlogin/server/store/migration"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  []int64
		err   string
	}{
		{"in order", []string{"m/0002_b.sql", "m/0001_a.sql", "m/0010_c.sql", "m/README"}, []int64{1, 2, 10}, ""},
		{"none", nil, nil, ""},
		{"no number", []string{"m/init.sql"}, nil, "positive version"},
		{"zero", []string{"m/0000_x.sql"}, nil, "positive version"},
		{"duplicate", []string{"m/0001_a.sql", "m/1_b.sql"}, nil, "not above"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys[f] = &fstest.MapFile{Data: []byte("-- " + f)}
			}
			ms, err := migration.Load(fsys, "m")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != len(tt.want) {
				t.Fatalf("got %d migrations, want %d", len(ms), len(tt.want))
			}
			for i, m := range ms {
				if m.Version != tt.want[i] || !strings.HasSuffix(m.SQL, m.Name) {
					t.Errorf("migration %d = %+v", i, m)
				}
			}
		})
	}
}
