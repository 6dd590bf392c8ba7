// db.go owns `hookgate db copy`: a SQLite history copied into a new PostgreSQL database.

package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookgate/hookgate/store"
)

// cmdDB runs `hookgate db copy`: the history of a gateway that outgrew one host's SQLite
// file, moved into PostgreSQL with every id kept.
func cmdDB(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "copy" {
		fmt.Fprintf(stderr, "hookgate db: the only subcommand is copy\n\n%s", usage)
		return 2
	}
	fs := flag.NewFlagSet("db copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the SQLite database file to copy (the gateway using it should be stopped)")
	to := fs.String("to", "", "the PostgreSQL URL to copy into (postgres://…); its database must hold no history")
	toEnv := fs.String("to-env", "", "the environment variable holding that URL, keeping a password off the command line")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	dest := *to
	switch {
	case *from == "":
		fmt.Fprintln(stderr, "hookgate db copy: --from FILE is required")
		return 2
	case (*to == "") == (*toEnv == ""):
		fmt.Fprintln(stderr, "hookgate db copy: give one of --to URL or --to-env VAR")
		return 2
	case *toEnv != "":
		if dest = os.Getenv(*toEnv); dest == "" {
			fmt.Fprintf(stderr, "hookgate db copy: environment variable %s is empty or unset\n", *toEnv)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := store.Copy(ctx, *from, dest)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate %v\n", err)
		return 1
	}
	for i, t := range c.Tables {
		fmt.Fprintf(stdout, "%-18s %d rows\n", t, c.Rows[i])
	}
	fmt.Fprintf(stdout, "copied %s into %s\n", *from, store.Redact(dest))
	return 0
}
