// This file owns asking origin about tags without touching the checkout: the tags that
// match a target's glob (OriginTags) and when their commits were made (TagTimes).
package checkout

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// TagRef is one of origin's tags.
type TagRef struct {
	Name   string // without refs/tags/
	Commit string // the commit it points to, as origin peels it (the tag's own object for a lightweight tag)
}

// OriginTags asks origin for its tags whose names match glob (path.Match): one ref
// listing, as git ls-remote --tags, over the checkout's origin URL (Spec.URL when there is
// no checkout yet) with the configured credentials, bounded like OriginHead. It never
// touches the checkout's repository beyond reading its origin URL.
func OriginTags(ctx context.Context, s Spec, glob string) ([]TagRef, error) {
	tags, err := originTags(ctx, s, glob)
	if err != nil {
		return nil, s.named(err)
	}
	return tags, nil
}

func originTags(ctx context.Context, s Spec, glob string) ([]TagRef, error) {
	if _, err := path.Match(glob, ""); err != nil || glob == "" {
		return nil, fmt.Errorf("invalid tag glob %q", glob)
	}
	url, auth, key, err := lookUpOrigin(ctx, s)
	if err != nil {
		return nil, err
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	var refs []*plumbing.Reference
	err = withWatchdog(ctx, key, func() error {
		var err error
		refs, err = remote.ListContext(ctx, &git.ListOptions{Auth: auth, PeelingOption: git.AppendPeeled})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list origin's refs: %w", err)
	}
	byName := map[string]string{}
	peeled := map[string]string{}
	for _, r := range refs {
		name, ok := strings.CutPrefix(r.Name().String(), "refs/tags/")
		if !ok || r.Type() != plumbing.HashReference {
			continue
		}
		if base, ok := strings.CutSuffix(name, "^{}"); ok {
			peeled[base] = r.Hash().String()
			continue
		}
		if ok, _ := path.Match(glob, name); ok {
			byName[name] = r.Hash().String()
		}
	}
	tags := make([]TagRef, 0, len(byName))
	for name, h := range byName {
		if p, ok := peeled[name]; ok {
			h = p
		}
		tags = append(tags, TagRef{Name: name, Commit: h})
	}
	return tags, nil
}

// lookUpOrigin is what a look-up of origin needs: its URL, the credentials and the
// watchdog key, once any look-up of the same checkout given up on is over.
func lookUpOrigin(ctx context.Context, s Spec) (url string, auth transport.AuthMethod, key string, err error) {
	p, err := filepath.Abs(s.Path)
	if err != nil {
		return "", nil, "", fmt.Errorf("checkout path %s: %w", s.Path, err)
	}
	url = s.URL
	if repo, err := openCheckout(p); err == nil {
		if remote, err := repo.Remote("origin"); err == nil && len(remote.Config().URLs) > 0 {
			url = remote.Config().URLs[0]
		}
	}
	if url == "" {
		return "", nil, "", fmt.Errorf("checkout %s has no origin url and no url is set", p)
	}
	if auth, err = authFor(ctx, url, s); err != nil {
		return "", nil, "", err
	}
	// OriginHead's key: one look-up of origin at a time per checkout, whatever it asks.
	key = p + "\x00ls-remote"
	if err := waitForAbandoned(ctx, key); err != nil {
		return "", nil, "", err
	}
	return url, auth, key, nil
}

// MaxTagFetch is the most tags TagTimes fetches to read their commits' times: tags that
// are not semantic versions are ordered by commit time, which a ref listing does not tell.
const MaxTagFetch = 16

// TagTimes returns the commit time of each tag's commit. Commits already in the checkout
// are read there (reading only, so it may run beside a deploy); the others are fetched,
// one commit deep, into a temporary repository of their own, through the same
// bounded storage (pack scanner, server.max_fetch_size) as a deploy's fetch, and removed
// afterwards. More than MaxTagFetch tags to fetch is an error rather than an unbounded
// fetch.
func TagTimes(ctx context.Context, s Spec, tags []TagRef) (map[string]time.Time, error) {
	times, err := tagTimes(ctx, s, tags)
	if err != nil {
		return nil, s.named(err)
	}
	return times, nil
}

func tagTimes(ctx context.Context, s Spec, tags []TagRef) (map[string]time.Time, error) {
	times := map[string]time.Time{}
	var missing []TagRef
	local, _ := openCheckout(s.Path)
	for _, t := range tags {
		if local != nil {
			if c, err := local.CommitObject(plumbing.NewHash(t.Commit)); err == nil {
				times[t.Name] = c.Committer.When
				continue
			}
		}
		missing = append(missing, t)
	}
	if len(missing) == 0 {
		return times, nil
	}
	if len(missing) > MaxTagFetch {
		return nil, fmt.Errorf("%d matching tags are not semantic versions and not fetched yet; at most %d are fetched to order them by commit time: "+
			"name the tags as semantic versions (v1.2.3) or narrow the glob", len(missing), MaxTagFetch)
	}
	url, auth, key, err := lookUpOrigin(ctx, s)
	if err != nil {
		return nil, err
	}
	// In the system's temp dir, not beside the checkout: nothing of it is the checkout's.
	tmp, err := os.MkdirTemp("", "hookgate-tags-")
	if err != nil {
		return nil, fmt.Errorf("order tags by commit time: %w", err)
	}
	defer os.RemoveAll(tmp)
	st := newStorage(osfs.New(tmp), false, s.Limits)
	defer st.Close()
	repo, err := git.Init(st, nil)
	if err != nil {
		return nil, fmt.Errorf("order tags by commit time: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		return nil, fmt.Errorf("order tags by commit time: %w", err)
	}
	specs := make([]config.RefSpec, 0, len(missing))
	for _, t := range missing {
		ref := plumbing.NewTagReferenceName(t.Name)
		specs = append(specs, config.RefSpec(fmt.Sprintf("+%[1]s:%[1]s", ref)))
	}
	err = withWatchdog(ctx, key, func() error {
		return repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: specs, Auth: auth, Tags: git.NoTags, Depth: 1})
	})
	if err != nil && err != git.NoErrAlreadyUpToDate {
		return nil, fmt.Errorf("fetch tags to order them by commit time: %w", err)
	}
	for _, t := range missing {
		c, err := repo.CommitObject(plumbing.NewHash(t.Commit))
		if err != nil {
			return nil, fmt.Errorf("tag %s: read commit %s: %w", t.Name, t.Commit[:min(7, len(t.Commit))], err)
		}
		times[t.Name] = c.Committer.When
	}
	return times, nil
}
