//go:build !linux

package render

import "os/exec"

// ownGroup leaves the browser as chromedp starts it: process groups and a
// parent-death signal are Linux's; chromedp kills the browser's leftovers
// by its profile directory elsewhere.
func ownGroup(*exec.Cmd) {}

func killGroup(int) {}

// groupMemory reads nothing: without process groups there is no group to
// measure, and a browser is retired by its page count alone.
func groupMemory(int) (int64, bool) { return 0, false }

func groupPIDs(int) []int { return nil }
