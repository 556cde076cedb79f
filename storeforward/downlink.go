package storeforward

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// downlinkTimeout bounds one local publish of a downlinked message.
const downlinkTimeout = 10 * time.Second

// openDownlinkSession opens the broker session downlinked messages are
// published through (see Deps.Sessions), if there are downlink rules.
func (f *Forwarder) openDownlinkSession(ctx context.Context) (msg.Session, error) {
	if len(f.dl) == 0 {
		return nil, nil
	}
	if f.deps.Sessions == nil {
		if f.deps.Publisher == nil {
			return nil, errors.New("uplink.downlink: no publisher to publish downlinked messages with")
		}
		f.log.Warn("downlinked messages are published without a client id: one that matches a forward rule would be sent back to the cloud")
		f.pub = f.deps.Publisher
		return nil, nil
	}
	s, _, err := f.deps.Sessions.Open(ctx, msg.SessionOptions{
		ClientID:   f.dlID,
		Listener:   "uplink downlink",
		RemoteAddr: f.cfg.URL,
		CleanStart: true,
		Deliver:    func(msg.Message) {}, // it subscribes to nothing
	})
	if err != nil {
		return nil, err
	}
	f.pub = s
	return s, nil
}

// subscribeDownlink subscribes to the downlink filters on the cloud when
// the cloud has no session for us, or on the first connection of this
// process (the rules may have changed since the session was made). With a
// session present the subscriptions are the cloud's: its messages arrive
// through OnMessage. In v5, Retain Handling 1 keeps a re-subscription from
// replaying retained commands [MQTT-3.3.1-10].
func (f *Forwarder) subscribeDownlink(ctx context.Context, c *client.Client) {
	if len(f.dl) == 0 {
		return
	}
	if c.Limits().SessionPresent && f.subscribed {
		return
	}
	subs := make([]packet.Subscription, len(f.dl))
	for i, r := range f.dl {
		subs[i] = packet.Subscription{Filter: r.Filter, QoS: min(r.QoS, c.Limits().MaxQoS)}
		if f.ccfg.ProtocolVersion == packet.V5 {
			subs[i].RetainHandling = 1
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	codes, err := c.Subscribe(sctx, subs, f.downlink)
	if err != nil {
		f.log.Error("subscribing to the downlink filters on the cloud", "err", err, "codes", codes)
		return
	}
	f.subscribed = true
	f.log.Info("downlink subscribed", "filters", len(subs), "granted", codes)
}

// downlink publishes a cloud message locally under the first downlink
// rule whose filter matches it. It runs on the client's reader goroutine:
// the cloud gets its PUBACK/PUBREC when the local broker has taken the
// message (for QoS 1/2 after every tap made it durable), which is the
// downlink's flow control.
func (f *Forwarder) downlink(m *client.Message) {
	var rule *DownlinkRule
	for i := range f.dl {
		if topic.Match(f.dl[i].Filter, m.Topic) {
			rule = &f.dl[i]
			break
		}
	}
	if rule == nil {
		f.log.Debug("cloud message matches no downlink rule", "topic", m.Topic)
		return
	}
	local := rule.LocalPrefix + strings.TrimPrefix(m.Topic, rule.StripPrefix)
	if strings.HasPrefix(local, "$") {
		// The cloud does not get to write the broker's own $ topics
		// ([MQTT-4.7.2-1] reserves them for the server).
		f.count(func(st *Status) { st.DownlinkErrors++ })
		f.log.Warn("refusing a downlinked message for a $ topic", "cloud_topic", m.Topic, "topic", local)
		return
	}
	lm := msg.Message{
		Topic:           local,
		Payload:         m.Payload,
		QoS:             m.QoS,
		Retain:          m.Retain,
		ContentType:     m.Props.ContentType,
		ResponseTopic:   m.Props.ResponseTopic,
		CorrelationData: m.Props.CorrelationData,
	}
	if p := m.Props.PayloadFormat; p != nil {
		lm.PayloadFormat = *p
	}
	if e := m.Props.MessageExpiry; e != nil {
		lm.MessageExpiry = time.Duration(*e) * time.Second
	}
	for _, u := range m.Props.User {
		lm.UserProperties = append(lm.UserProperties, msg.UserProperty{Key: u.Key, Value: u.Value})
	}
	ctx, cancel := context.WithTimeout(context.Background(), downlinkTimeout)
	defer cancel()
	if f.pub == nil {
		return
	}
	if err := f.pub.Publish(ctx, lm); err != nil {
		f.count(func(st *Status) { st.DownlinkErrors++ })
		f.log.Warn("publishing a downlinked message locally", "cloud_topic", m.Topic, "topic", local, "err", err)
		return
	}
	f.count(func(st *Status) { st.Downlinked++ })
}
