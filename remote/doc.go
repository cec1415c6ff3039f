// Package remote asks a cluster node, over the system ssh client, what it
// is, and says in plain words why ssh could not reach it. It is shared by
// the run (which pushes a binary and starts workers) and by scrape check
// (the preflight), so that both word a node's trouble the same way.
//
//   - ssh.go: the ssh command line (Target.Argv) and running a command on
//     a node (Target.Run), whose failures are *SSHError or *CommandError.
//   - classify.go: ssh's own messages mapped to a Problem with its likely fix.
//   - platform.go: a node's OS and CPU in Go's terms and the name of the
//     build it needs (scrape-linux-armv7, scrape-windows-amd64.exe).
//   - probe.go: the probe, one ssh session that answers OS, CPU, CPU count,
//     memory, clock, push cache and the binary at --remote-bin, in the node's
//     shell: POSIX sh, or PowerShell on Windows.
//   - shell.go: the command lines of each shell: quoting for sh, cmd.exe and
//     PowerShell, and PowerShell scripts passed as -EncodedCommand, which no
//     shell between us and powershell.exe can misquote.
//
// Nothing here is verified on a real Windows machine: the Windows command
// lines and probe answers are unit-tested as text only.
package remote
