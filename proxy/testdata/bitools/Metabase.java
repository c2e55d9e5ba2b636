import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Statement;
import java.time.LocalDateTime;

/**
 * Metabase's use of the PostgreSQL JDBC driver for a question on a
 * dashboard, as a PostgreSQL log shows it, on a connection of its c3p0 pool
 * (metabase/driver/sql_jdbc/connection.clj and execute.clj):
 *
 * <ol>
 *   <li>checkout: testConnectionOnCheckout calls isValid, an empty Query;
 *   <li>set-best-transaction-level!: setTransactionIsolation(READ
 *       UNCOMMITTED), an unnamed extended SET SESSION CHARACTERISTICS;
 *   <li>set-role-if-supported!: SET ROLE NONE through a Statement;
 *   <li>setReadOnly(true), setAutoCommit(false), holdability
 *       CLOSE_CURSORS_AT_COMMIT: no SQL, but the next statement is preceded
 *       by BEGIN READ ONLY;
 *   <li>the question: the remark line, then the compiled MBQL with one bound
 *       parameter, a forward-only PreparedStatement with fetch size 500 and
 *       max rows 2000; with autocommit off the driver runs it in a named
 *       portal, Execute with a row limit of 500, PortalSuspended, more
 *       Executes; every row is read;
 *   <li>commit (the driver's COMMIT statement);
 *   <li>checkin: c3p0 restores the defaults, setTransactionIsolation(READ
 *       COMMITTED) with autocommit still off and no transaction open, then
 *       readOnly false and autocommit true (no SQL).
 * </ol>
 *
 * <p>usage: Metabase URL pooled|fresh REPEATS. pooled reuses one connection
 * for every repeat (past prepareThreshold the driver names the statement and
 * asks for binary results); fresh opens a new one per repeat. Prints one line
 * per repeat: the row count, the sum of the numeric column, and a digest of
 * the column names and types and of the text of every value.
 */
public class Metabase {
    static final String SQL = "-- Metabase:: userID: 1 queryType: MBQL queryHash: "
            + "4d3f6c0a1b2e9f8d7c6b5a49382716051f2e3d4c5b6a79881726354433221100\n"
            + "SELECT \"public\".\"mb_orders\".\"id\" AS \"id\", "
            + "\"public\".\"mb_orders\".\"total\" AS \"total\", "
            + "\"public\".\"mb_orders\".\"product\" AS \"product\", "
            + "\"public\".\"mb_orders\".\"created_at\" AS \"created_at\", "
            + "\"public\".\"mb_orders\".\"paid\" AS \"paid\", "
            + "\"public\".\"mb_orders\".\"quantity\" AS \"quantity\" "
            + "FROM \"public\".\"mb_orders\" "
            + "WHERE \"public\".\"mb_orders\".\"created_at\" >= ? "
            + "ORDER BY \"public\".\"mb_orders\".\"id\" ASC LIMIT 2000";

    public static void main(String[] args) throws Exception {
        String url = args[0];
        boolean fresh = args[1].equals("fresh");
        int n = Integer.parseInt(args[2]);
        Connection pooled = fresh ? null : DriverManager.getConnection(url);
        for (int i = 0; i < n; i++) {
            Connection c = fresh ? DriverManager.getConnection(url) : pooled;
            System.out.println(i + " " + question(c));
            if (fresh) {
                c.close();
            }
        }
        if (pooled != null) {
            pooled.close();
        }
    }

    static String question(Connection c) throws Exception {
        if (!c.isValid(5)) {
            throw new IllegalStateException("isValid: false");
        }
        c.setTransactionIsolation(Connection.TRANSACTION_READ_UNCOMMITTED);
        try (Statement s = c.createStatement()) {
            s.execute("SET ROLE NONE");
        }
        c.setReadOnly(true);
        c.setAutoCommit(false);
        c.setHoldability(ResultSet.CLOSE_CURSORS_AT_COMMIT);

        MessageDigest md = MessageDigest.getInstance("SHA-256");
        long rows = 0;
        BigDecimal sum = BigDecimal.ZERO;
        try (PreparedStatement ps = c.prepareStatement(SQL, ResultSet.TYPE_FORWARD_ONLY,
                ResultSet.CONCUR_READ_ONLY, ResultSet.CLOSE_CURSORS_AT_COMMIT)) {
            ps.setFetchDirection(ResultSet.FETCH_FORWARD);
            ps.setFetchSize(500);
            ps.setMaxRows(2000);
            ps.setObject(1, LocalDateTime.of(2024, 1, 13, 12, 0));
            try (ResultSet rs = ps.executeQuery()) {
                ResultSetMetaData md0 = rs.getMetaData();
                int cols = md0.getColumnCount();
                for (int j = 1; j <= cols; j++) {
                    update(md, md0.getColumnLabel(j) + ":" + md0.getColumnTypeName(j));
                }
                while (rs.next()) {
                    rows++;
                    BigDecimal total = rs.getBigDecimal("total");
                    if (total != null) {
                        sum = sum.add(total);
                    }
                    for (int j = 1; j <= cols; j++) {
                        String v = rs.getString(j);
                        update(md, v == null ? "\u0000NULL" : v);
                    }
                }
            }
        }
        c.commit();

        c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
        c.setReadOnly(false);
        c.setAutoCommit(true);

        StringBuilder hex = new StringBuilder();
        for (byte b : md.digest()) {
            hex.append(String.format("%02x", b));
        }
        return "rows=" + rows + " sum=" + sum.toPlainString() + " digest=" + hex.substring(0, 32);
    }

    static void update(MessageDigest md, String s) {
        md.update(s.getBytes(StandardCharsets.UTF_8));
        md.update((byte) '\u001f');
    }
}
