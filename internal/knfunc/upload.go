package knfunc

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// defaultIgnored is kn func's DefaultIgnored (pkg/functions/client.go):
// never uploaded, whatever .funcignore says.
var defaultIgnored = []string{".git", ".func", ".funcignore", ".gitignore"}

// Upload copies what the pack builder uploads of a function's root: all of
// it minus DefaultIgnored and .funcignore's patterns. It returns how many
// files and bytes that is.
func Upload(src, dst string) (files int, size int64, err error) {
	patterns, err := funcIgnore(src)
	if err != nil {
		return 0, 0, err
	}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		if Ignored(rel, patterns) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			size += int64(len(data))
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	})
	return files, size, err
}

// funcIgnore reads root/.funcignore's patterns (none when it is absent).
func funcIgnore(root string) ([]string, error) {
	f, err := os.Open(filepath.Join(root, ".funcignore"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	return patterns, sc.Err()
}

// Ignored mirrors kn func's IsIgnored for a path relative to the function's
// root: "/foo" root-relative, "foo/" and "foo" by base name at any depth,
// globs against the base name and the relative path.
func Ignored(rel string, patterns []string) bool {
	base := filepath.Base(rel)
	for _, d := range defaultIgnored {
		if base == d {
			return true
		}
	}
	slashRel := filepath.ToSlash(rel)
	for _, p := range patterns {
		if strings.HasPrefix(p, "/") {
			if slashRel == p[1:] || strings.HasPrefix(slashRel, p[1:]+"/") {
				return true
			}
			continue
		}
		p = strings.TrimSuffix(p, "/")
		if ok, _ := filepath.Match(p, base); ok {
			return true
		}
		if ok, _ := filepath.Match(p, rel); ok {
			return true
		}
	}
	return false
}
