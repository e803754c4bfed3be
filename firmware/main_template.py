# /main.py of a tinysense device, as `tinysense bundle` writes it: runs the app named in /config.json under the
# frozen asyncio shell (apps.shell: Wi-Fi from /secrets.json, MQTT, outage handling). A config error stops at
# the REPL with its message; anything else is printed, and the board resets after 10 s to start over.
import sys
import time

from apps import shell

try:
    shell.main("/config.json", "/secrets.json")
except shell.ConfigError as e:
    print("tinysense: configuration error:", e)
except KeyboardInterrupt:
    print("tinysense: stopped")
except Exception as e:
    sys.print_exception(e)
    time.sleep(10)
    import machine

    machine.reset()
