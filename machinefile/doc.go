// Package machinefile reads the list of hosts that scrape starts workers on.
//
// A machinefile names one host per line. It accepts the host forms of MPICH
// and Open MPI machinefiles and of GNU parallel's --sshlogin, so that a file
// written for one of those tools can be reused as it is:
//
//	# A comment runs from '#' to the end of the line; blank lines are ignored.
//	node1                   # one slot
//	node2:4                 # MPICH: four slots
//	node3 slots=4           # Open MPI: four slots (max_slots=N is checked, then ignored)
//	8/node4                 # GNU parallel: eight slots
//	:                       # GNU parallel: this machine, read as "localhost"
//	bob@node5:2             # log in as bob
//	10.0.0.7                # IPv4
//	[fe80::1%eth0]:2        # IPv6 carries a slot count only inside brackets
//	::1                     # a bare IPv6 address is always one slot
//	node6 port=2222         # ssh port
//	ssh://bob@node7:2222    # ssh URL: here the number after the colon is the port
//	4/ssh://node8:2222      # so a URL's slots come from N/ or slots=N
//	node9 proxy=http://p:3128  # the node's own proxy (repeatable: a pool)
//	node10 render=no        # never renders pages (--render), browser or not
//
// A slot is one concurrent worker on the host; a slot count is a decimal from
// 1 to MaxSlots. A line gives the count at most once: "node1:2 slots=4" and
// "4/node1:2" are errors, not a choice between the two.
//
// The number after a host's colon is its slot count, as in MPICH, everywhere
// except in an ssh:// URL, where it is the port, as in every other URL. Outside
// URLs the port has a single spelling, the port= option, and "node1:22:4" is
// rejected instead of guessed at. A port of 0 in Host means none was given,
// so ssh falls back on its own default and ~/.ssh/config.
//
// After the host come only key=value options: slots, max_slots, port,
// proxy and render (yes or no). An
// unknown key is an error, and so is any other word, since a line holds a
// single host.
//
// Host names are letters, digits, '-', '_' and '.', in labels that neither
// begin nor end with '-'; a name made only of digits and dots must be an IPv4
// address. User names are letters, digits, '.', '_' and '-', not beginning
// with '-'. Neither can be taken by ssh for one of its options.
//
// A host listed more than once, with the same user, name and port, gets the
// sum of its slot counts and keeps the place and line of its first
// appearance. Names are compared without regard to case and IP addresses by
// value, so "Node1" repeats "node1" and "[::0:1]" repeats "::1".
//
// A file may start with a UTF-8 byte order mark and may end its lines with
// CRLF. A line is at most MaxLineLength bytes. A file naming no host is an
// error ([ErrEmpty]): a cluster of no machines is never what was meant.
package machinefile
