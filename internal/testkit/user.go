package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// User is a system account made for one test.
type User struct {
	Name     string
	UID, GID uint32
}

// NewUser creates a system user (with its own group) for the test and deletes it when
// the test ends. It needs root and useradd: without them the test is skipped, except under
// CI (CI=true, as .ci/run sets), which runs as root, where a missing user is a failure.
func NewUser(t testing.TB) User {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "switching users needs root; this test runs as uid "+strconv.Itoa(os.Geteuid()))
	}
	useradd, err := exec.LookPath("useradd")
	if err != nil {
		unavailable(t, "useradd is not installed (Debian: apt-get install passwd)")
	}
	var b [4]byte
	rand.Read(b[:])
	name := "hgtest" + hex.EncodeToString(b[:])
	out, err := exec.Command(useradd, "--system", "--user-group", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
	if err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return User{Name: name, UID: uint32(uid), GID: uint32(gid)}
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must run this test: %s", why)
	}
	t.Skip(why)
}

// Reachable lets other users reach dir: it adds search permission (o+x) to dir and each
// folder above it inside the system's temporary folder, which t.TempDir makes 0700.
func Reachable(t testing.TB, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); d != tmp && strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, info.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}
