package client_test

import (
	"testing"

	"github.com/qrlogin/qrlogin/shared/client"
)

func TestUnencrypted(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"http://192.168.1.20:8080", true},
		{"http://203.0.113.7", true},
		{"http://login.example.com/", true},
		{"HTTP://login.example.com", true},
		{"http://[2001:db8::1]:8080", true},
		{"http://0.0.0.0:8080", true},
		{"http://127.0.0.1:8080", false},
		{"http://127.8.9.10", false},
		{"http://[::1]:8080", false},
		{"http://localhost:8080", false},
		{"http://LOCALHOST.:8080", false},
		{"http://app.localhost", false},
		{"https://192.168.1.20:8443", false},
		{"https://login.example.com", false},
		{"http://localhost.example.com", true},
	} {
		if got := client.Unencrypted(tt.url); got != tt.want {
			t.Errorf("Unencrypted(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
