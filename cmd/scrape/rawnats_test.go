package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/scrape-cluster/scrape/queue"
)

// The NATS protocol spoken by hand, as a stranger (or a worker's stolen key)
// would speak it to a run's queue: nothing in the client library decides
// for the test what is sent.

// rawInfo is what the tests read of a server's INFO.
type rawInfo struct {
	AuthRequired bool   `json:"auth_required"`
	TLSRequired  bool   `json:"tls_required"`
	Nonce        string `json:"nonce"`
}

// rawConn is a connection to a NATS server past its INFO, and past the TLS
// handshake when the server demands one.
type rawConn struct {
	net.Conn
	br   *bufio.Reader
	info rawInfo
}

// dialRaw connects to addr and reads the server's INFO. When the server
// demands TLS it starts it, checking the server with tc, or not at all when
// tc is nil, as a stranger who takes any certificate. The whole connection
// has 5 s to live.
func dialRaw(addr string, tc *tls.Config) (*rawConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	info, ok := strings.CutPrefix(line, "INFO ")
	if err != nil || !ok {
		conn.Close()
		return nil, fmt.Errorf("no INFO from %s: %q %v", addr, line, err)
	}
	c := &rawConn{Conn: conn, br: br}
	if err := json.Unmarshal([]byte(info), &c.info); err != nil {
		conn.Close()
		return nil, fmt.Errorf("INFO from %s: %w", addr, err)
	}
	if c.info.TLSRequired {
		if tc == nil {
			tc = &tls.Config{InsecureSkipVerify: true}
		}
		tconn := tls.Client(conn, tc)
		if err := tconn.Handshake(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		c.Conn, c.br = tconn, bufio.NewReader(tconn)
	}
	return c, nil
}

// readInfo is the server's INFO at addr.
func readInfo(addr string) (rawInfo, error) {
	c, err := dialRaw(addr, nil)
	if err != nil {
		return rawInfo{}, err
	}
	defer c.Close()
	return c.info, nil
}

// send writes protocol lines.
func (c *rawConn) send(lines ...string) error {
	_, err := io.WriteString(c, strings.Join(lines, "\r\n")+"\r\n")
	return err
}

// pub is the PUB of data to subject, with reply when it is not empty.
func pub(subject, reply, data string) string {
	if reply != "" {
		subject += " " + reply
	}
	return fmt.Sprintf("PUB %s %d\r\n%s", subject, len(data), data)
}

// rawMsg is a message the server delivered.
type rawMsg struct {
	subject, reply string
	header, data   string
}

// readUntil reads what the server sends until a line satisfies stop, the
// connection ends or its deadline passes, answering the server's PINGs.
// It returns everything read, and the message whose MSG or HMSG line
// stopped it, if one did.
func (c *rawConn) readUntil(stop func(line string) bool) (string, *rawMsg, error) {
	var got strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		got.WriteString(line)
		if err != nil {
			return got.String(), nil, nil // the server closed, or time is up
		}
		if line == "PING\r\n" {
			if err := c.send("PONG"); err != nil {
				return got.String(), nil, err
			}
		}
		var msg *rawMsg
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "MSG" || f[0] == "HMSG") {
			if msg, err = c.readMsg(f); err != nil {
				return got.String(), nil, err
			}
		}
		if stop(line) {
			return got.String(), msg, nil
		}
	}
}

// readMsg reads the body of the message whose MSG or HMSG line is f:
// MSG subject sid [reply] size, HMSG subject sid [reply] hsize size.
func (c *rawConn) readMsg(f []string) (*rawMsg, error) {
	m := &rawMsg{subject: f[1]}
	sizes := 1
	if f[0] == "HMSG" {
		sizes = 2
	}
	if len(f) == 3+sizes+1 {
		m.reply = f[3]
	}
	total, err := strconv.Atoi(f[len(f)-1])
	hsize := 0
	if sizes == 2 && err == nil {
		hsize, err = strconv.Atoi(f[len(f)-2])
	}
	if err != nil || hsize > total {
		return nil, fmt.Errorf("bad message line %q", strings.Join(f, " "))
	}
	body := make([]byte, total+2)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, err
	}
	m.header, m.data = string(body[:hsize]), string(body[hsize:total])
	return m, nil
}

// rawSession speaks to the queue at addr: it sends CONNECT connect(INFO)
// (unless that is empty), subscribes to sub, publishes forged to pub
// (unless it is empty) and sends PING. It returns what the server sent,
// until it closed the connection, sent a message on sub, or 5 s passed.
func rawSession(addr string, tc *tls.Config, connect func(rawInfo) string, sub, pubTo string) (string, error) {
	c, err := dialRaw(addr, tc)
	if err != nil {
		return "", err
	}
	defer c.Close()
	var lines []string
	if s := connect(c.info); s != "" {
		lines = append(lines, "CONNECT "+s)
	}
	lines = append(lines, "SUB "+sub+" 1")
	if pubTo != "" {
		lines = append(lines, pub(pubTo, "", forged))
	}
	if err := c.send(append(lines, "PING")...); err != nil {
		return "", err
	}
	got, _, err := c.readUntil(func(line string) bool {
		return strings.HasPrefix(line, "MSG ") || strings.HasPrefix(line, "HMSG ")
	})
	return got, err
}

// forged is what a stranger publishes as a result.
const forged = `{"url":"` + forgedURL + `","line":1,"title":"` + forgedTitle + `"}`

// workerConnect is the CONNECT of a worker that signs the server's nonce
// with seed, naming itself with the worker ID id, as the worker the run
// started with that seed does.
func workerConnect(seed, id, node string, info rawInfo) (string, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return "", err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	if info.Nonce == "" {
		return "", errors.New("the server sent no nonce to sign")
	}
	sig, err := kp.Sign([]byte(info.Nonce))
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(map[string]any{
		"verbose": false, "pedantic": false, "protocol": 1, "headers": true, "tls_required": info.TLSRequired,
		"name": queue.ClientName(id, node), "nkey": pub, "sig": base64.RawURLEncoding.EncodeToString(sig),
	})
	return string(c), err
}
