package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestInterleavingRotatesContenders(t *testing.T) {
	var turns []string
	err := Interleaving[string]{
		Rounds: 3, Groups: 2, Contenders: []string{"a", "b", "c"},
		BeforeRound: func(_ context.Context, round int) error {
			turns = append(turns, fmt.Sprintf("|%d", round))
			return nil
		},
		Turn: func(_ context.Context, round, group int, c string) error {
			turns = append(turns, fmt.Sprintf("%d%s", group, c))
			return nil
		},
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(turns, " ")
	want := "|0 0a 0b 0c 1a 1b 1c |1 0b 0c 0a 1b 1c 1a |2 0c 0a 0b 1c 1a 1b"
	if got != want {
		t.Errorf("turns\n got %s\nwant %s", got, want)
	}
}

func TestInterleavingStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	err := Interleaving[int]{
		Rounds: 5, Contenders: []int{1, 2},
		Turn: func(context.Context, int, int, int) error {
			if n++; n == 3 {
				cancel()
			}
			return nil
		},
	}.Run(ctx)
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Errorf("after a cancel in turn 3: %d turns, err %v; want 3 turns and context.Canceled", n, err)
	}
	boom := errors.New("boom")
	n = 0
	err = Interleaving[int]{
		Rounds: 5, Contenders: []int{1, 2},
		Turn: func(context.Context, int, int, int) error {
			n++
			return boom
		},
	}.Run(context.Background())
	if err != boom || n != 1 {
		t.Errorf("a failing turn: %d turns, err %v; want 1 turn and its error", n, err)
	}
}
