package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/output"
)

// Files of a run's state directory, beside the queue's store (jetstream/),
// the journal and status.json.
const (
	runFile   = "run.json"
	inputCopy = "input.urls" // the urls read from stdin, for a resume
)

// runState describes a run to a later resume of it.
type runState struct {
	Run     string          `json:"run"`
	Created time.Time       `json:"created"`
	Options json.RawMessage `json:"options,omitempty"`
	// Input is the urls file's absolute path, "" when the urls came from
	// stdin (they are copied to input.urls as they are read).
	Input      string        `json:"input,omitempty"`
	InputSize  int64         `json:"input_size,omitempty"`
	InputMTime time.Time     `json:"input_mtime,omitzero"`
	Output     string        `json:"output"`
	Format     output.Format `json:"format"`
	Finished   bool          `json:"finished,omitempty"`
}

// ErrNoRun is returned when a state directory holds no run to resume.
var ErrNoRun = errors.New("no run to resume")

func readRunState(dir string) (runState, error) {
	var st runState
	data, err := os.ReadFile(filepath.Join(dir, runFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("%s: %w (no %s)", dir, ErrNoRun, runFile)
	}
	if err != nil {
		return st, fmt.Errorf("read run state: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("read run state %s: %w", filepath.Join(dir, runFile), err)
	}
	return st, nil
}

func writeRunState(dir string, st runState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, runFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write run state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, runFile)); err != nil {
		return fmt.Errorf("write run state: %w", err)
	}
	return nil
}

// SavedOptions returns what the command stored with the run in dir
// (Config.Saved), so that a resume runs with the same flags.
func SavedOptions(dir string) (json.RawMessage, error) {
	st, err := readRunState(dir)
	if err != nil {
		return nil, err
	}
	if st.Finished {
		return nil, fmt.Errorf("the run in %s is finished: its records are in %s", dir, st.Output)
	}
	return st.Options, nil
}

// prepareState makes or checks the run's state directory and returns it.
// A new run refuses a directory holding another run unless Force; a resume
// takes over the run it finds there, its ID included.
func (c *Coordinator) prepareState(format output.Format) (string, *runState, error) {
	dir := c.cfg.StateDir
	if dir == "" {
		if c.cfg.Resume {
			return "", nil, errors.New("resume: no state directory given")
		}
		dir = filepath.Join(".scrape", time.Now().Format("20060102-150405")+"-"+strings.ToLower(c.run.ID))
		c.ownsState = true
	}
	if c.cfg.Resume {
		if err := private(dir); err != nil {
			return "", nil, fmt.Errorf("resume: %w", err)
		}
		st, err := readRunState(dir)
		if err != nil {
			return "", nil, err
		}
		if st.Finished {
			return "", nil, fmt.Errorf("the run in %s is finished: its records are in %s", dir, st.Output)
		}
		if st.Output != c.cfg.Output || st.Format != format {
			return "", nil, fmt.Errorf("resume %s: it wrote %s (%s), not %s (%s)", dir, st.Output, st.Format, c.cfg.Output, format)
		}
		c.run.ID = st.Run
		return dir, &st, nil
	}
	if _, err := os.Stat(filepath.Join(dir, runFile)); err == nil {
		if !c.cfg.Force {
			return "", nil, &StateInUseError{Dir: dir}
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", nil, fmt.Errorf("clear state directory: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "jetstream"), 0o700); err != nil {
		return "", nil, fmt.Errorf("create state directory: %w", err)
	}
	if err := private(dir); err != nil {
		return "", nil, err
	}
	st := runState{Run: c.run.ID, Created: time.Now().UTC(), Options: c.cfg.Saved, Output: c.cfg.Output, Format: format}
	if c.cfg.InputPath != "" && c.cfg.InputPath != "-" {
		abs, err := filepath.Abs(c.cfg.InputPath)
		if err != nil {
			return "", nil, fmt.Errorf("urls file: %w", err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return "", nil, fmt.Errorf("urls file: %w", err)
		}
		st.Input, st.InputSize, st.InputMTime = abs, fi.Size(), fi.ModTime().UTC()
	}
	if err := writeRunState(dir, st); err != nil {
		return "", nil, err
	}
	return dir, &st, nil
}

// openInput returns the urls to read. A new run reads Config.Input, keeping a
// copy of stdin in the state directory; a resume reads the same file again,
// and refuses one that changed since.
func (c *Coordinator) openInput(dir string, st *runState) (io.Reader, func() error, error) {
	if !c.cfg.Resume {
		if st.Input != "" {
			return c.cfg.Input, func() error { return nil }, nil
		}
		cp, err := os.OpenFile(filepath.Join(dir, inputCopy), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("keep a copy of stdin: %w", err)
		}
		return io.TeeReader(c.cfg.Input, cp), cp.Close, nil
	}
	path := st.Input
	if path == "" {
		path = filepath.Join(dir, inputCopy)
	} else if fi, err := os.Stat(path); err == nil && (fi.Size() != st.InputSize || !fi.ModTime().UTC().Equal(st.InputMTime)) {
		return nil, nil, fmt.Errorf("resume: %s changed since the run began (its line numbers are the run's task IDs)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("resume: open urls: %w", err)
	}
	return f, f.Close, nil
}

// finishState marks the run done, or removes its directory if it was ours.
func (c *Coordinator) finishState(dir string, st *runState) error {
	if c.ownsState {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		_ = os.Remove(filepath.Dir(dir)) // .scrape/, if no other run is in it
		return nil
	}
	st.Finished = true
	return writeRunState(dir, *st)
}
