#!/bin/busybox sh
# The guest side of `virtio-gpio linux`: the real driver and libgpiod's tools against the device.
# Lines starting "@@" talk to the host, which reads the console:
#   @@ RESULT <step> ok|fail <detail>   a step checked here
#   @@ SET <line> <0|1>                 the host drives the input pin (the guest then polls)
#   @@ EXPECT <line> <0|1>              the host checks the output pin while gpioset holds it
#   @@ PULSE <line> <rising|falling> <n> the host makes n such edges, paced for the re-arm
#   @@ END                              then the guest powers off
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
NGPIO=@NGPIO@
result() { echo "@@ RESULT $1 $2 $3"; }
check() { if [ "$2" = "$3" ]; then result "$1" ok "$2"; else result "$1" fail "got:$2,want:$3"; fi; }

for m in @MODULES@; do insmod /mods/$m.ko 2>/dev/null || result insmod-$m fail "insmod"; done
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/gpiochip0 ] && break; sleep 0.5; done
check probe "$(ls /dev/gpiochip0 2>/dev/null)" /dev/gpiochip0
echo "@@ GPIODETECT $(gpiodetect 2>&1 | tr '\n' ' ')"
gpioinfo gpiochip0 2>&1 | sed 's/^/@@ GPIOINFO /'

line=0
while [ $line -lt $NGPIO ]; do
  for v in 1 0; do
    gpioset --mode=time --usec=1500000 gpiochip0 $line=$v &
    sleep 0.3
    echo "@@ EXPECT $line $v"
    wait
  done
  for v in 1 0; do
    echo "@@ SET $line $v"
    got=x; n=0
    while [ $n -lt 40 ]; do got=$(gpioget gpiochip0 $line 2>/dev/null); [ "$got" = $v ] && break; sleep 0.1; n=$((n+1)); done
    check gpioget-$line-$v "$got" $v
  done
  line=$((line+1))
done

LINE=@EVENT_LINE@
for kind in rising falling both; do
  case $kind in rising) flag=--rising-edge; want=4;; falling) flag=--falling-edge; want=4;; both) flag=; want=8;; esac
  echo "@@ SET $LINE $([ $kind = falling ] && echo 1 || echo 0)"
  sleep 0.5
  timeout 30 gpiomon --num-events=$want $flag --format=%e gpiochip0 $LINE > /tmp/events 2>&1 &
  sleep 0.5
  echo "@@ PULSE $LINE $kind 4"
  wait
  check gpiomon-$kind "$(wc -l < /tmp/events | tr -d ' ')" $want
  echo "@@ EVENTS $kind $(tr '\n' ' ' < /tmp/events)"
done

# Unbind with a gpiomon holding an eventq buffer at the device (a reset with a buffer
# outstanding), except on 6.1: removing the chip while a line is requested makes 6.1's next probe
# oops in gpiolib's gpio_name_to_desc, so there the line is free first.
DEV=$(basename $(readlink /sys/bus/virtio/drivers/gpio_virtio/virtio* 2>/dev/null) 2>/dev/null)
case $(uname -r) in 6.1.*) held="no line requested";; *) held="a buffer outstanding"
  gpiomon --num-events=1 --rising-edge gpiochip0 $LINE >/dev/null 2>&1 & sleep 0.5;; esac
echo $DEV > /sys/bus/virtio/drivers/gpio_virtio/unbind 2>/dev/null; wait
got="$(ls /dev/gpiochip0 2>/dev/null)"
if [ -z "$got" ]; then result unbind ok "$held"; else result unbind fail "$got still there ($held)"; fi
echo $DEV > /sys/bus/virtio/drivers/gpio_virtio/bind 2>/dev/null
sleep 1
check rebind "$(gpiodetect 2>/dev/null | grep -c virtio)" 1
echo "@@ SET 0 1"; sleep 0.5
check after-rebind "$(gpioget gpiochip0 0 2>/dev/null)" 1
echo "@@ END"
poweroff -f
