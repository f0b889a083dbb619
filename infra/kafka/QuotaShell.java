// Sets and lifts a broker's default producer byte-rate quota on request, for the `backlog`
// experiment (lib/ingestlab/experiments/backlog.py), through Kafka's own Admin API
// (alterClientQuotas: what kafka-configs.sh, kafka.admin.ConfigCommand, calls). One JVM for the
// whole run, started before the load, so that a change costs a round trip to the broker, not a
// JVM start (kafka-configs.sh took 3-8 s on the study's busy core).
//
// Run as a single source file with the broker's jars:
//   java -cp '<kafka libs>/*' infra/kafka/QuotaShell.java 127.0.0.1:<port>
// Protocol, one line each way: it prints "ready" once its client has had an answer from the
// broker; then for each line
// "set <bytes per second>" or "clear" on stdin it prints "ok <ms the change took>" or
// "error <what>". Any other line it prints (a logger's) is not part of the protocol.
// Stdin closed: it exits.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Collections;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;

public class QuotaShell {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        // the default client-id entity (a null name): every client without a quota of its own
        ClientQuotaEntity everyClient = new ClientQuotaEntity(
                Collections.singletonMap(ClientQuotaEntity.CLIENT_ID, null));
        try (Admin admin = Admin.create(props);
             BufferedReader in = new BufferedReader(new InputStreamReader(System.in))) {
            admin.describeClientQuotas(ClientQuotaFilter.all()).entities().get();  // connected, metadata known
            System.out.println("ready");
            System.out.flush();
            String line;
            while ((line = in.readLine()) != null) {
                String[] words = line.trim().split("\\s+");
                long began = System.nanoTime();
                try {
                    Double value = switch (words[0]) {
                        case "set" -> Double.valueOf(words[1]);
                        case "clear" -> null;  // a null value removes the quota
                        default -> throw new IllegalArgumentException("unknown command: " + line);
                    };
                    ClientQuotaAlteration.Op op = new ClientQuotaAlteration.Op("producer_byte_rate", value);
                    admin.alterClientQuotas(List.of(new ClientQuotaAlteration(everyClient, List.of(op))))
                            .all().get();
                    System.out.println("ok " + (System.nanoTime() - began) / 1_000_000);
                } catch (Exception e) {
                    System.out.println("error " + e.toString().replace('\n', ' '));
                }
                System.out.flush();
            }
        }
    }
}
