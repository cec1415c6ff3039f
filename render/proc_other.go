//go:build !linux

package render

import "os/exec"

// ownGroup leaves the browser as chromedp starts it: process groups and a
// parent-death signal are Linux's; chromedp kills the browser's leftovers
// by its profile directory elsewhere.
func ownGroup(*exec.Cmd) {}

func killGroup(int) {}
