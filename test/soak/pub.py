# Helper of test/soak/soak.sh.
# pub.py PORT TOPIC RATE SECONDS LOG: QoS 1 publisher with reconnects; logs each acked seq
import sys, time, paho.mqtt.client as mqtt, threading
port, topic, rate, secs, log = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
out = open(log, "w", buffering=1)
c = mqtt.Client(client_id="soak-pub-" + topic.replace("/", "-"), clean_session=True)
c.reconnect_delay_set(0.2, 2)
connected = threading.Event()
c.on_connect = lambda cl, u, f, rc: connected.set() if rc == 0 else None
c.on_disconnect = lambda cl, u, rc: connected.clear()
while True:
    try:
        c.connect("127.0.0.1", port, 30); break
    except Exception: time.sleep(0.5)
c.loop_start()
seq, end = 0, time.time() + secs
while time.time() < end:
    if not connected.wait(1): continue
    seq += 1
    # the payload carries the seq; a message not acknowledged is re-published with the same seq
    while time.time() < end + 60:
        try:
            info = c.publish(topic, str(seq), qos=1)
            info.wait_for_publish(timeout=5)
            if info.is_published():
                out.write("%d\n" % seq); break
        except Exception:
            pass
        connected.wait(1)
    time.sleep(1.0 / rate)
c.loop_stop(); c.disconnect()
