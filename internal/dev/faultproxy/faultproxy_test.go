package faultproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echo serves lines back.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// Up forwards; Down cuts the open connection and refuses new ones; Up forwards again.
func TestDownCutsAndRefuses(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(open); got != "ping\n" || err != nil {
		t.Fatalf("up: %q, %v", got, err)
	}
	p.Down()
	if got, err := roundTrip(open); err == nil {
		t.Fatalf("an open connection survived Down: %q", got)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err == nil {
		if got, err := roundTrip(c); err == nil {
			t.Fatalf("a new connection was served while down: %q", got)
		}
		c.Close()
	}
	p.Up()
	c, err = net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c); got != "ping\n" || err != nil {
		t.Fatalf("up again: %q, %v", got, err)
	}
}
