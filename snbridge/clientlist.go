package snbridge

import "sort"

// ClientInfo is one MQTT-SN client as the gateway sees it, for the web
// console: its broker session carries the same client id.
type ClientInfo struct {
	ClientID string
	Addr     string // the node's last address (UDP host:port, serial device)
	State    string // active | asleep | awake | lost | disconnected | connecting
}

// Clients lists the gateway's clients, sorted by client id.
func (g *Gateway) Clients() []ClientInfo {
	g.mu.Lock()
	cs := make([]*client, 0, len(g.clients))
	for _, c := range g.clients {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	out := make([]ClientInfo, 0, len(cs))
	for _, c := range cs {
		c.mu.Lock()
		ci := ClientInfo{ClientID: c.id, State: c.state.name()}
		if c.peer != nil {
			ci.Addr = c.peer.String()
		}
		c.mu.Unlock()
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// name is the state as the console and logs show it (section 6.14's
// states, plus the steps of connecting).
func (s clientState) name() string {
	switch s {
	case stateActive:
		return "active"
	case stateAsleep:
		return "asleep"
	case stateAwake:
		return "awake"
	case stateLost:
		return "lost"
	case stateDisconnected:
		return "disconnected"
	default:
		return "connecting"
	}
}
