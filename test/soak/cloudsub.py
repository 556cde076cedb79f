# Helper of test/soak/soak.sh.
# cloudsub.py PORT FILTER LOG: persistent QoS 1 subscriber on the cloud broker; logs topic payload per message
import sys, time, paho.mqtt.client as mqtt
port, flt, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = open(log, "a", buffering=1)
c = mqtt.Client(client_id="soak-cloud-sub", clean_session=False)
c.reconnect_delay_set(0.2, 2)
c.on_connect = lambda cl, u, f, rc: cl.subscribe(flt, 1)
c.on_message = lambda cl, u, m: out.write("%s %s %d\n" % (m.topic, m.payload.decode(errors="replace"), m.dup))
while True:
    try:
        c.connect("127.0.0.1", port, 30); break
    except Exception: time.sleep(0.3)
c.loop_forever(retry_first_connection=True)
