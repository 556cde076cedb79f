package snbridge

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/outpost-iot/outpost/brokercore/topic"
)

// predefined holds the pre-defined topic ids of section 6.7: known in advance
// by the client's application and the gateway, used with TopicIdType 0b01
// without REGISTER. Ids are per client, with a table common to all clients.
type predefined struct {
	common    map[uint16]string
	commonRev map[string]uint16
	client    map[string]map[uint16]string
	clientRev map[string]map[string]uint16
}

func newPredefined() *predefined {
	return &predefined{
		common: map[uint16]string{}, commonRev: map[string]uint16{},
		client: map[string]map[uint16]string{}, clientRev: map[string]map[string]uint16{},
	}
}

// add records id → name for clientID ("" = every client).
func (p *predefined) add(clientID string, id uint16, name string) {
	if clientID == "" {
		p.common[id], p.commonRev[name] = name, id
		return
	}
	if p.client[clientID] == nil {
		p.client[clientID], p.clientRev[clientID] = map[uint16]string{}, map[string]uint16{}
	}
	p.client[clientID][id], p.clientRev[clientID][name] = name, id
}

// name looks id up for clientID, its own table first.
func (p *predefined) name(clientID string, id uint16) (string, bool) {
	if n, ok := p.client[clientID][id]; ok {
		return n, true
	}
	n, ok := p.common[id]
	return n, ok
}

// id looks name up for clientID, its own table first.
func (p *predefined) id(clientID, name string) (uint16, bool) {
	if id, ok := p.clientRev[clientID][name]; ok {
		return id, true
	}
	id, ok := p.commonRev[name]
	return id, ok
}

func checkPredefined(id uint16, name string) error {
	if id == 0 || id == 0xFFFF {
		return fmt.Errorf("topic id %d is reserved (0x0000 and 0xFFFF, section 5.3.11)", id)
	}
	if err := topic.ValidName(name); err != nil {
		return err
	}
	return nil
}

// PredefinedEntry is one line of a predefined-topic file.
type PredefinedEntry struct {
	ClientID string // "" for every client ("*" or "COMMON" in the file)
	TopicID  uint16
	Topic    string
}

// ParsePredefinedTopics reads the Paho MQTT-SN gateway's predefined-topic
// file format (its predefinedTopic.conf): one "ClientId,TopicName,TopicId"
// per line, blank lines and lines starting with '#' ignored, spaces around
// fields trimmed. A ClientId of "*" (or Paho's "COMMON") applies to every
// client. Errors name the file line.
func ParsePredefinedTopics(r io.Reader) ([]PredefinedEntry, error) {
	var out []PredefinedEntry
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		f := strings.Split(s, ",")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d %q: want ClientId,TopicName,TopicId", line, s)
		}
		cid, name, ids := strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])
		id, err := strconv.ParseUint(ids, 0, 16)
		if err != nil {
			return nil, fmt.Errorf("line %d: topic id %q: not a number 1..65534", line, ids)
		}
		if err := checkPredefined(uint16(id), name); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if cid == "*" || cid == "COMMON" {
			cid = ""
		} else if cid == "" {
			return nil, fmt.Errorf("line %d: empty ClientId (use * for every client)", line)
		}
		out = append(out, PredefinedEntry{ClientID: cid, TopicID: uint16(id), Topic: name})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return out, nil
}

// loadPredefined builds the table from the config map and file.
func loadPredefined(cfg Config) (*predefined, error) {
	p := newPredefined()
	for id, name := range cfg.PredefinedTopics {
		if err := checkPredefined(id, name); err != nil {
			return nil, fmt.Errorf("mqttsn.predefined_topics %d %q: %w", id, name, err)
		}
		p.add("", id, name)
	}
	if cfg.PredefinedTopicsFile == "" {
		return p, nil
	}
	f, err := os.Open(cfg.PredefinedTopicsFile)
	if err != nil {
		return nil, fmt.Errorf("mqttsn.predefined_topics_file: %w", err)
	}
	defer f.Close()
	entries, err := ParsePredefinedTopics(f)
	if err != nil {
		return nil, fmt.Errorf("mqttsn.predefined_topics_file %s: %w", cfg.PredefinedTopicsFile, err)
	}
	for _, e := range entries {
		p.add(e.ClientID, e.TopicID, e.Topic)
	}
	return p, nil
}
