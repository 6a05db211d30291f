package recorder

import "testing"

// An identity is the repository's GitHub id and the key when both sides
// know the id (renames and transfers keep it), else the repository's name
// and the key.
func TestIdentity_SameByRepositoryIDWhenBothKnowIt(t *testing.T) {
	tests := []struct {
		name string
		a, b identity
		want bool
	}{
		{"same id, renamed", identity{"acme/api", 42, "7"}, identity{"acme/gateway", 42, "7"}, true},
		{"same id, another key", identity{"acme/api", 42, "7"}, identity{"acme/api", 42, "8"}, false},
		{"one name, two ids (renamed away, then created)", identity{"acme/api", 42, "7"}, identity{"acme/api", 43, "7"}, false},
		{"no id on one side: by name", identity{"acme/api", 0, "7"}, identity{"acme/api", 42, "7"}, true},
		{"no id on one side, another name", identity{"acme/api", 0, "7"}, identity{"acme/gateway", 42, "7"}, false},
		{"no ids: by name", identity{"acme/api", 0, "main"}, identity{"acme/api", 0, "main"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.same(tt.b); got != tt.want {
				t.Errorf("%s same %s = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := tt.b.same(tt.a); got != tt.want {
				t.Errorf("not symmetric: %s same %s = %v", tt.b, tt.a, got)
			}
		})
	}
}
