package amqp

// Link recovery (AMQP 1.0 §2.6.13, §3.4.6) and link stealing, our client against our server: no
// installed peer implements resumption.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// TestLinkStolen: a second attach of the same sender link (same name, same container-id) on
// another connection detaches the first with amqp:link:stolen before the handler sees it; another
// container's link of the same name is left alone.
func TestLinkStolen(t *testing.T) {
	type accepted struct {
		rcv       *Receiver
		container string
		oldDone   bool // the previous link of this container had ended when the handler ran
	}
	got := make(chan accepted, 4)
	var prev *Receiver
	h := LinkHandlerFunc(func(req *LinkRequest) error {
		a := accepted{container: req.Conn().RemoteContainerID()}
		if prev != nil && a.container == "dev-1" {
			select {
			case <-prev.Done():
				a.oldDone = true
			default:
			}
		}
		rcv, err := req.AcceptReceiver(nil)
		if err != nil {
			return err
		}
		if a.container == "dev-1" {
			prev = rcv
		}
		a.rcv = rcv
		got <- a
		go func() {
			for {
				d, err := rcv.Receive(context.Background())
				if err != nil {
					return
				}
				_ = d.Accept(context.Background())
			}
		}()
		return nil
	})
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, LinkHandler: h})
	ctx := ctxT(t, 10*time.Second)
	next := func() accepted {
		t.Helper()
		select {
		case a := <-got:
			return a
		case <-ctx.Done():
			t.Fatal("no attach reached the handler")
			return accepted{}
		}
	}

	s1 := ownSession(t, dialOwn(t, url, &ConnOptions{ContainerID: "dev-1"}))
	snd1, err := s1.NewSender(ctx, "telemetry", &SenderOptions{Name: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	old := next()
	s2 := ownSession(t, dialOwn(t, url, &ConnOptions{ContainerID: "dev-1"}))
	snd2, err := s2.NewSender(ctx, "telemetry", &SenderOptions{Name: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	if a := next(); !a.oldDone {
		t.Error("the new attach reached the handler before the old link was detached")
	}
	select {
	case <-snd1.Done():
	case <-ctx.Done():
		t.Fatal("the old link was not detached")
	}
	var e *Error
	if !errors.As(snd1.Err(), &e) || e.Condition != frames.CondLinkStolen {
		t.Fatalf("old client link ended with %v, want %s", snd1.Err(), frames.CondLinkStolen)
	}
	var le *LinkError
	if !errors.As(old.rcv.Err(), &le) || le.LocalErr == nil || le.LocalErr.Condition != frames.CondLinkStolen {
		t.Fatalf("old server link ended with %v, want local %s", old.rcv.Err(), frames.CondLinkStolen)
	}
	if _, err := snd1.Send(ctx, dataMsg("x"), nil); err == nil {
		t.Fatal("Send on the stolen link succeeded")
	}
	if st, err := snd2.Send(ctx, dataMsg("y"), nil); err != nil {
		t.Fatalf("Send on the new link: %v", err)
	} else if _, ok := st.(*frames.Accepted); !ok {
		t.Fatalf("new link outcome %v", st)
	}

	// Another container's link of the same name is another link (AMQP 1.0 §2.6.1).
	s3 := ownSession(t, dialOwn(t, url, &ConnOptions{ContainerID: "dev-2"}))
	snd3, err := s3.NewSender(ctx, "telemetry", &SenderOptions{Name: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	next()
	for _, snd := range []*Sender{snd2, snd3} {
		if st, err := snd.Send(ctx, dataMsg("z"), nil); err != nil {
			t.Fatalf("Send after another container attached: %v", err)
		} else if _, ok := st.(*frames.Accepted); !ok {
			t.Fatalf("outcome %v", st)
		}
	}
	if snd2.Err() != nil {
		t.Fatalf("link of dev-1 ended: %v", snd2.Err())
	}
}

// TestResumeSender suspends a Resumable sender with three unsettled deliveries — a: received and
// accepted by the node (the outcome never reached the sender), b: received without an outcome,
// c: never sent (no credit) — and resumes the link on a new connection. AMQP 1.0 §3.4.6: a
// settles with the receiver's outcome and is not delivered again, b is resent with resume=true,
// c is sent as a new delivery. The first attach's unsettled map is null.
func TestResumeSender(t *testing.T) {
	for _, how := range []string{"detach", "connection-lost"} {
		t.Run(how, func(t *testing.T) { testResumeSender(t, how) })
	}
}

func testResumeSender(t *testing.T, how string) {
	type attach struct {
		unsettled  frames.Unsettled
		incomplete bool
		rcv        *Receiver
	}
	attaches := make(chan attach, 2)
	answer := make(chan *ReceiverOptions, 2)
	h := LinkHandlerFunc(func(req *LinkRequest) error {
		a := attach{unsettled: req.Unsettled(), incomplete: req.IncompleteUnsettled()}
		opts := <-answer
		rcv, err := req.AcceptReceiver(opts)
		if err != nil {
			return err
		}
		a.rcv = rcv
		attaches <- a
		return nil
	})
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, LinkHandler: h})
	ctx := ctxT(t, 15*time.Second)

	c1 := dialOwn(t, url, &ConnOptions{ContainerID: "dev-r"})
	s1 := ownSession(t, c1)
	answer <- &ReceiverOptions{ManualCredit: true, Credit: 10}
	snd1, err := s1.NewSender(ctx, "telemetry", &SenderOptions{Name: "pub-r", Resumable: true})
	if err != nil {
		t.Fatal(err)
	}
	first := <-attaches
	if first.unsettled != nil {
		t.Fatalf("a fresh attach carried the unsettled map %v (must be null)", first.unsettled)
	}
	if err := first.rcv.IssueCredit(2); err != nil {
		t.Fatal(err)
	}
	var receipts []*Receipt
	for _, s := range []string{"a", "b", "c"} {
		r, err := snd1.SendAsync(ctx, dataMsg(s), &SendOptions{Tag: []byte("tag-" + s)})
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, r)
	}
	for _, want := range []string{"a", "b"} {
		d, err := first.rcv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, d); got != want || d.Resumed() {
			t.Fatalf("got %q (resumed %v), want %q", got, d.Resumed(), want)
		}
	}
	// The node stored a (accepted) but the link is suspended before the outcome goes out.
	switch how {
	case "detach":
		if err := snd1.Detach(ctx); err != nil {
			t.Fatal(err)
		}
	case "connection-lost":
		_ = c1.Close()
	}
	<-first.rcv.Done()
	for _, r := range receipts {
		select {
		case <-r.Done():
			st, err := r.State()
			t.Fatalf("receipt %s completed on suspend: %v %v", r.Tag(), st, err)
		default:
		}
	}

	s2 := ownSession(t, dialOwn(t, url, &ConnOptions{ContainerID: "dev-r"}))
	answer <- &ReceiverOptions{Credit: 10, Unsettled: frames.Unsettled{
		{Tag: []byte("tag-a"), State: &frames.Accepted{}},
		{Tag: []byte("tag-b")},
	}}
	snd2, err := s2.NewSender(ctx, "", &SenderOptions{Resume: snd1, Target: &frames.Target{Address: frames.Some("telemetry")}})
	if err != nil {
		t.Fatal(err)
	}
	if snd2.Name() != "pub-r" {
		t.Fatalf("resumed link name %q", snd2.Name())
	}
	second := <-attaches
	if len(second.unsettled) != 2 || string(second.unsettled[0].Tag) != "tag-a" || string(second.unsettled[1].Tag) != "tag-b" || second.incomplete {
		t.Fatalf("resuming attach's unsettled map: %+v (incomplete %v)", second.unsettled, second.incomplete)
	}
	for _, want := range []struct {
		body    string
		resumed bool
	}{{"b", true}, {"c", false}} {
		d, err := second.rcv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, d); got != want.body || d.Resumed() != want.resumed || string(d.Tag()) != "tag-"+want.body {
			t.Fatalf("got %q tag %q (resumed %v), want %q (resumed %v)", got, d.Tag(), d.Resumed(), want.body, want.resumed)
		}
		if err := d.Accept(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range receipts {
		st, err := r.Wait(ctx)
		if err != nil {
			t.Fatalf("receipt %s: %v", r.Tag(), err)
		}
		if _, ok := st.(*frames.Accepted); !ok {
			t.Fatalf("receipt %s: %v", r.Tag(), st)
		}
	}
	// No duplicate of a: nothing else arrives.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if d, err := second.rcv.Receive(short); err == nil {
		t.Fatalf("unexpected delivery %q (tag %q)", body(t, d), d.Tag())
	}
	go func() {
		if d, err := second.rcv.Receive(ctx); err == nil {
			_ = d.Accept(ctx)
		}
	}()
	if st, err := snd2.Send(ctx, dataMsg("d"), nil); err != nil {
		t.Fatalf("Send after resume: %v", err)
	} else if _, ok := st.(*frames.Accepted); !ok {
		t.Fatalf("outcome after resume: %v", st)
	}
}

// TestResumeAborted: a delivery the application cancelled while it was partly sent on the
// suspended link is not resent: the resumed link carries a transfer with resume=true and
// aborted=true (AMQP 1.0 §3.4.6, §2.6.14), which the receiver discards while counting its credit;
// the receipt fails with ErrAborted. A resume whose attach is refused can be tried again.
func TestResumeAborted(t *testing.T) {
	attaches := make(chan *Receiver, 3)
	refuse := make(chan bool, 3)
	h := LinkHandlerFunc(func(req *LinkRequest) error {
		if <-refuse {
			return &Error{Condition: frames.CondResourceLocked, Description: "try later"}
		}
		rcv, err := req.AcceptReceiver(&ReceiverOptions{ManualCredit: true, Credit: 10, Unsettled: req.Unsettled()})
		if err != nil {
			return err
		}
		attaches <- rcv
		return nil
	})
	// A session window of 2 frames that is never re-advertised: the large delivery stalls after
	// two of its frames.
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, LinkHandler: h, MaxFrameSize: 512, SessionWindow: 2},
		func(srv *Server) { srv.cfg.fixedWindow = true })
	ctx := ctxT(t, 15*time.Second)

	s1 := ownSession(t, dialOwn(t, url, &ConnOptions{ContainerID: "dev-a"}))
	refuse <- false
	snd1, err := s1.NewSender(ctx, "telemetry", &SenderOptions{Name: "pub-a", Resumable: true})
	if err != nil {
		t.Fatal(err)
	}
	rcv1 := <-attaches
	if err := rcv1.IssueCredit(1); err != nil {
		t.Fatal(err)
	}
	if err := snd1.WaitCredit(ctx); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 4000)
	r, err := snd1.SendAsync(ctx, &frames.Message{Data: [][]byte{big}}, &SendOptions{Tag: []byte("big")})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the delivery has started: the sender used its one credit.
	for snd1.Credit() != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the delivery never started")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := snd1.Detach(ctx); err != nil {
		t.Fatal(err)
	}
	r.Cancel() // the payload is not to be resent
	select {
	case <-r.Done():
		st, err := r.State()
		t.Fatalf("the cancelled receipt completed before the resume: %v %v", st, err)
	default:
	}

	s2 := ownSession(t, dialOwn(t, url, &ConnOptions{ContainerID: "dev-a"}))
	refuse <- true
	if _, err := s2.NewSender(ctx, "telemetry", &SenderOptions{Resume: snd1}); err == nil {
		t.Fatal("the refused resume succeeded")
	}
	refuse <- false
	snd2, err := s2.NewSender(ctx, "telemetry", &SenderOptions{Resume: snd1})
	if err != nil {
		t.Fatalf("second resume attempt: %v", err)
	}
	rcv2 := <-attaches
	if err := rcv2.IssueCredit(2); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wait(ctx); !errors.Is(err, ErrAborted) {
		t.Fatalf("cancelled receipt: %v, want ErrAborted", err)
	}
	go func() {
		if d, err := rcv2.Receive(ctx); err == nil {
			_ = d.Accept(ctx)
		}
	}()
	st, err := snd2.Send(ctx, dataMsg("after"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*frames.Accepted); !ok {
		t.Fatalf("outcome %v", st)
	}
	// The aborted delivery used one of the two credits, "after" the other.
	if c := snd2.Credit(); c != 0 {
		t.Fatalf("sender credit %d after the aborted and the new delivery, want 0", c)
	}
	if err := rcv2.IssueCredit(1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for snd2.Credit() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c := snd2.Credit(); c != 1 {
		t.Fatalf("sender credit %d after one more credit, want 1 (receiver and sender disagree on delivery-count)", c)
	}
}

// TestResumeReceiverRaw: a foreign sender resumes a link with a raw attach. The handler sees its
// unsettled map and answers with its own; the answer carries it (AMQP 1.0 §2.6.13). A resumed
// unsettled transfer whose tag the receiver's map gives an outcome is settled with that outcome
// and not delivered again; one without an outcome is delivered with Resumed(). A fresh attach is
// answered with a null map.
func TestResumeReceiverRaw(t *testing.T) {
	type seen struct {
		peer frames.Unsettled
		rcv  *Receiver
	}
	got := make(chan seen, 2)
	h := LinkHandlerFunc(func(req *LinkRequest) error {
		var mine frames.Unsettled
		if req.Unsettled() != nil {
			mine = frames.Unsettled{{Tag: []byte("t1"), State: &frames.Accepted{}}, {Tag: []byte("t2")}}
		}
		rcv, err := req.AcceptReceiver(&ReceiverOptions{Unsettled: mine})
		if err != nil {
			return err
		}
		got <- seen{peer: req.Unsettled(), rcv: rcv}
		return nil
	})
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, LinkHandler: h})
	ctx := ctxT(t, 10*time.Second)
	p := rawDial(t, url)
	p.open(nil)
	p.begin(0)

	// A fresh attach: null map both ways.
	if a := p.attachSender(0, 0, "fresh", "q"); a.Unsettled != nil {
		t.Fatalf("answer to a fresh attach has unsettled %v", a.Unsettled)
	}
	if s := <-got; s.peer != nil {
		t.Fatalf("handler saw unsettled %v on a fresh attach", s.peer)
	}

	p.send(0, &frames.Attach{Name: "resumed", Handle: 1, Role: frames.RoleSender, Source: &frames.Source{},
		Target: &frames.Target{Address: frames.Some("q")}, InitialDeliveryCount: frames.Some(uint32(0)),
		Unsettled: frames.Unsettled{{Tag: []byte("t1")}, {Tag: []byte("t2")}}}, nil)
	a := expect[*frames.Attach](p)
	if len(a.Unsettled) != 2 || string(a.Unsettled[0].Tag) != "t1" || string(a.Unsettled[1].Tag) != "t2" {
		t.Fatalf("answer's unsettled map %+v", a.Unsettled)
	}
	if _, ok := a.Unsettled[0].State.(*frames.Accepted); !ok {
		t.Fatalf("answer's state for t1: %T", a.Unsettled[0].State)
	}
	s := <-got
	if len(s.peer) != 2 {
		t.Fatalf("handler saw unsettled %+v", s.peer)
	}
	if f := expect[*frames.Flow](p); f.Handle.Or(99) != 1 || f.LinkCredit.Or(0) == 0 {
		t.Fatalf("flow %+v, want credit on handle 1", f)
	}
	resumed := func(id uint32, tag, body string) {
		p.send(0, &frames.Transfer{Handle: 1, DeliveryID: frames.Some(id), DeliveryTag: []byte(tag),
			MessageFormat: frames.Some(uint32(0)), Resume: true}, encodedMsg(t, body))
	}
	resumed(0, "t1", "one")
	d := expect[*frames.Disposition](p)
	if d.First != 0 || !d.Settled || d.Role != frames.RoleReceiver {
		t.Fatalf("disposition %+v, want delivery 0 settled", d)
	}
	if _, ok := d.State.(*frames.Accepted); !ok {
		t.Fatalf("disposition state %T, want the map's accepted", d.State)
	}
	resumed(1, "t2", "two")
	dl, err := s.rcv.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if body(t, dl) != "two" || !dl.Resumed() || string(dl.Tag()) != "t2" {
		t.Fatalf("delivery %q tag %q resumed %v, want t2", body(t, dl), dl.Tag(), dl.Resumed())
	}
	if err := dl.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if d := expect[*frames.Disposition](p); d.First != 1 || !d.Settled {
		t.Fatalf("disposition %+v, want delivery 1 settled", d)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if extra, err := s.rcv.Receive(short); err == nil {
		t.Fatalf("t1 delivered again: %q", body(t, extra))
	}
}
