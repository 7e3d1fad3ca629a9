# Sourced by bench/broker-start.sh and bench/broker-standby.sh: one broker configuration for both.
#
#   broker_conf DIR NAME OPENWIRE STOMP [KAHADB_CHILDREN]
#
# writes DIR/activemq.xml (broker NAME, no JMX, KahaDB under ${activemq.data}, OpenWire and STOMP
# on 127.0.0.1; KAHADB_CHILDREN, e.g. a <locker>, goes inside <kahaDB>) and DIR/log4j.properties
# (INFO to stdout, which the agent sends to its log: the standby's start reads the locker's line).
broker_conf() {
  local dir=$1 name=$2 openwire=$3 stomp=$4 children=${5:-} kahadb
  if [ -n "$children" ]; then
    kahadb="<kahaDB directory=\"\${activemq.data}/kahadb\">$children</kahaDB>"
  else
    kahadb="<kahaDB directory=\"\${activemq.data}/kahadb\"/>"
  fi
  cat >"$dir/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="$name" dataDirectory="\${activemq.data}">
    <persistenceAdapter>$kahadb</persistenceAdapter>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://127.0.0.1:$openwire"/>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$stomp"/>
    </transportConnectors>
  </broker>
</beans>
XML
  cat >"$dir/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%d | %-5p | %m%n
EOF
}
