import java.math.BigDecimal;
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.List;

/**
 * What Metabase and Tableau do with a PostgreSQL database through the
 * PostgreSQL JDBC driver: read the catalog through DatabaseMetaData, run
 * prepared statements past prepareThreshold (named server-side statements
 * S_1, ...), time queries out, work with autocommit off, send batches and
 * fetch with a fetch size.
 *
 * Usage: java BiClient JDBC_URL
 *
 * Prints one line per fact. Everything printed must be the same whether the
 * URL points at PostgreSQL or at the proxy in front of it; timings are
 * reduced to booleans. Unexpected exceptions are printed, not thrown, so
 * that the rest still runs.
 */
public class BiClient {
    static String url;

    static void out(String section, Object... parts) {
        StringBuilder b = new StringBuilder(section);
        for (Object p : parts) {
            b.append(" | ").append(p);
        }
        System.out.println(b);
    }

    static String err(SQLException e) {
        String m = e.getMessage();
        int nl = m.indexOf('\n');
        if (nl >= 0) {
            m = m.substring(0, nl);
        }
        return e.getClass().getSimpleName() + " " + e.getSQLState() + " " + m;
    }

    interface Step {
        void run() throws Exception;
    }

    static void section(String name, Step s) {
        try {
            s.run();
        } catch (SQLException e) {
            out(name, "UNEXPECTED", err(e));
        } catch (Exception e) {
            out(name, "UNEXPECTED", e.toString());
        }
    }

    static Connection connect() throws SQLException {
        return DriverManager.getConnection(url);
    }

    /** Prints a result set, the named columns of each row. */
    static void rows(String section, ResultSet rs, String... cols) throws SQLException {
        int n = 0;
        while (rs.next()) {
            List<Object> vals = new ArrayList<>();
            for (String c : cols) {
                vals.add(c + "=" + rs.getString(c));
            }
            out(section, vals.toArray());
            n++;
        }
        out(section, "rows", n);
        rs.close();
    }

    public static void main(String[] args) throws Exception {
        url = args[0];
        section("metadata", BiClient::metadata);
        section("prepared", BiClient::prepared);
        section("timeout", BiClient::timeout);
        section("transactions", BiClient::transactions);
        section("batch", BiClient::batch);
        section("fetch", BiClient::fetch);
        section("errors", BiClient::errors);
        out("done");
    }

    static void metadata() throws Exception {
        try (Connection c = connect()) {
            DatabaseMetaData md = c.getMetaData();
            out("metadata", "product", md.getDatabaseProductName(), md.getDatabaseMajorVersion());
            out("metadata", "user", md.getUserName(), "readonly", md.isReadOnly());
            rows("metadata schemas", md.getSchemas(), "TABLE_SCHEM");
            rows("metadata tables", md.getTables(null, null, "%", new String[] {"TABLE", "VIEW", "PARTITIONED TABLE", "SEQUENCE", "INDEX", "TYPE"}),
                    "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE", "REMARKS");
            for (String[] t : new String[][] {{"public", "customers"}, {"sales", "orders"}, {"sales", "big_orders"}}) {
                String sec = "metadata " + t[0] + "." + t[1];
                rows(sec + " columns", md.getColumns(null, t[0], t[1], "%"), "COLUMN_NAME", "DATA_TYPE", "TYPE_NAME",
                        "COLUMN_SIZE", "DECIMAL_DIGITS", "NULLABLE", "COLUMN_DEF", "IS_AUTOINCREMENT", "REMARKS", "ORDINAL_POSITION");
                rows(sec + " pk", md.getPrimaryKeys(null, t[0], t[1]), "COLUMN_NAME", "KEY_SEQ", "PK_NAME");
                rows(sec + " imported", md.getImportedKeys(null, t[0], t[1]), "PKTABLE_SCHEM", "PKTABLE_NAME", "PKCOLUMN_NAME",
                        "FKCOLUMN_NAME", "UPDATE_RULE", "DELETE_RULE", "FK_NAME");
                rows(sec + " exported", md.getExportedKeys(null, t[0], t[1]), "FKTABLE_SCHEM", "FKTABLE_NAME", "FKCOLUMN_NAME");
                rows(sec + " indexes", md.getIndexInfo(null, t[0], t[1], false, false), "INDEX_NAME", "NON_UNIQUE", "TYPE",
                        "ORDINAL_POSITION", "COLUMN_NAME", "ASC_OR_DESC", "FILTER_CONDITION");
            }
            rows("metadata functions", md.getFunctions(null, "public", "add%"), "FUNCTION_NAME", "FUNCTION_TYPE");
            rows("metadata udts", md.getUDTs(null, "public", "%", null), "TYPE_NAME", "DATA_TYPE");
            int n = 0;
            try (ResultSet rs = md.getTypeInfo()) {
                while (rs.next()) {
                    n++;
                }
            }
            out("metadata", "typeinfo rows", n, n > 50);
        }
    }

    static void prepared() throws Exception {
        // Two connections whose drivers give their different statements the
        // same names (S_1, S_2, ...), sharing the proxy's warehouse
        // connections.
        try (Connection a = connect(); Connection b = connect()) {
            a.createStatement().execute("create table counters (id int primary key, n bigint not null, at timestamptz)");
            PreparedStatement pa = a.prepareStatement("select ?::int * 2 as doubled, ?::text || '!' as shout, ?::numeric(10,2) as money");
            PreparedStatement pb = b.prepareStatement("select count(*) as n, max(email) as last from customers where id <= ?");
            PreparedStatement ins = a.prepareStatement("insert into counters values (?, ?, ?) on conflict (id) do update set n = counters.n + excluded.n");
            int bad = 0;
            for (int i = 1; i <= 20; i++) {
                pa.setInt(1, i);
                pa.setString(2, "x" + i);
                pa.setBigDecimal(3, new BigDecimal(i).divide(new BigDecimal(8)));
                try (ResultSet rs = pa.executeQuery()) {
                    rs.next();
                    if (rs.getInt(1) != 2 * i || !rs.getString(2).equals("x" + i + "!")) {
                        bad++;
                    }
                    out("prepared a", i, rs.getInt(1), rs.getString(2), rs.getBigDecimal(3), rs.getMetaData().getColumnTypeName(3));
                }
                pb.setInt(1, i * 10);
                try (ResultSet rs = pb.executeQuery()) {
                    rs.next();
                    if (rs.getLong(1) != i * 10) {
                        bad++;
                    }
                    out("prepared b", i, rs.getLong(1), rs.getString(2));
                }
                ins.setInt(1, i % 3);
                ins.setLong(2, i);
                ins.setTimestamp(3, Timestamp.valueOf("2024-01-01 00:00:00"));
                out("prepared ins", i, ins.executeUpdate());
            }
            rows("prepared counters", b.createStatement().executeQuery("select id, n from counters order by id"), "id", "n");
            out("prepared", "wrong answers", bad);
            a.createStatement().execute("drop table counters");
        }
    }

    static void timeout() throws Exception {
        try (Connection c = connect()) {
            Statement s = c.createStatement();
            s.setQueryTimeout(1);
            long start = System.nanoTime();
            try {
                s.executeQuery("select pg_sleep(10)");
                out("timeout", "no error");
            } catch (SQLException e) {
                out("timeout", err(e));
            }
            double secs = (System.nanoTime() - start) / 1e9;
            out("timeout", "within 5s", secs < 5, "after 1s", secs >= 0.9);
            PreparedStatement p = c.prepareStatement("select pg_sleep(?)");
            p.setQueryTimeout(1);
            p.setDouble(1, 10);
            start = System.nanoTime();
            try {
                p.executeQuery();
                out("timeout prepared", "no error");
            } catch (SQLException e) {
                out("timeout prepared", err(e));
            }
            out("timeout prepared", "within 5s", (System.nanoTime() - start) / 1e9 < 5);
            s.setQueryTimeout(0);
            try (ResultSet rs = s.executeQuery("select 42")) {
                rs.next();
                out("timeout", "after", rs.getInt(1));
            }
        }
    }

    static void transactions() throws Exception {
        try (Connection c = connect(); Connection other = connect()) {
            c.createStatement().execute("create table ledger (id serial primary key, who text, amount numeric(10,2))");
            c.setAutoCommit(false);
            PreparedStatement ins = c.prepareStatement("insert into ledger (who, amount) values (?, ?)");
            PreparedStatement sum = c.prepareStatement("select count(*), coalesce(sum(amount), 0) from ledger");
            PreparedStatement otherSum = other.prepareStatement("select count(*), coalesce(sum(amount), 0) from ledger");
            for (int i = 0; i < 10; i++) {
                ins.setString(1, "w" + i);
                ins.setBigDecimal(2, new BigDecimal(i + ".25"));
                ins.executeUpdate();
                try (ResultSet rs = sum.executeQuery(); ResultSet ors = otherSum.executeQuery()) {
                    rs.next();
                    ors.next();
                    out("transactions", "in tx", rs.getLong(1), rs.getBigDecimal(2), "seen outside", ors.getLong(1));
                }
            }
            c.commit();
            try (ResultSet ors = otherSum.executeQuery()) {
                ors.next();
                out("transactions", "after commit seen outside", ors.getLong(1), ors.getBigDecimal(2));
            }
            for (int i = 0; i < 5; i++) {
                ins.setString(1, "undone" + i);
                ins.setBigDecimal(2, new BigDecimal("1000"));
                ins.executeUpdate();
            }
            c.rollback();
            try (ResultSet rs = sum.executeQuery()) {
                rs.next();
                out("transactions", "after rollback", rs.getLong(1), rs.getBigDecimal(2));
            }
            ins.setString(1, "kept");
            ins.setBigDecimal(2, new BigDecimal("1"));
            ins.executeUpdate();
            Savepoint sp = c.setSavepoint("sp");
            ins.setString(1, "dropped");
            ins.executeUpdate();
            c.rollback(sp);
            c.commit();
            rows("transactions ledger", c.createStatement().executeQuery("select who, amount from ledger order by id"), "who", "amount");
            c.commit();
            c.setAutoCommit(true);
            c.createStatement().execute("drop table ledger");
        }
    }

    static void batch() throws Exception {
        try (Connection c = connect()) {
            c.createStatement().execute("create table items (id int primary key, label text, price numeric(8,2))");
            for (boolean auto : new boolean[] {true, false}) {
                c.setAutoCommit(auto);
                PreparedStatement p = c.prepareStatement("insert into items values (?, ?, ?)");
                int base = auto ? 0 : 1000;
                for (int i = 1; i <= 1000; i++) {
                    p.setInt(1, base + i);
                    p.setString(2, "item " + i);
                    p.setBigDecimal(3, new BigDecimal(i).movePointLeft(2));
                    p.addBatch();
                }
                int[] counts = p.executeBatch();
                int total = 0;
                for (int n : counts) {
                    total += n;
                }
                if (!auto) {
                    c.commit();
                }
                out("batch", "autocommit " + auto, "statements", counts.length, "rows", total);
            }
            c.setAutoCommit(true);
            // A batch with a duplicate key in the middle fails as a whole
            // in a transaction.
            c.setAutoCommit(false);
            PreparedStatement p = c.prepareStatement("insert into items values (?, ?, ?)");
            for (int id : new int[] {5000, 5001, 1, 5002}) {
                p.setInt(1, id);
                p.setString(2, "dup");
                p.setBigDecimal(3, BigDecimal.ONE);
                p.addBatch();
            }
            try {
                p.executeBatch();
                out("batch", "duplicate", "no error");
            } catch (BatchUpdateException e) {
                out("batch", "duplicate", e.getSQLState(), e.getNextException() != null ? e.getNextException().getSQLState() : "-");
            }
            c.rollback();
            c.setAutoCommit(true);
            Statement s = c.createStatement();
            for (int i = 0; i < 300; i++) {
                s.addBatch("update items set price = price + 1 where id = " + (i + 1));
            }
            out("batch", "statement batch", s.executeBatch().length);
            rows("batch totals", s.executeQuery("select count(*) as n, sum(price) as s, min(id) as lo, max(id) as hi from items"), "n", "s", "lo", "hi");
            s.execute("drop table items");
        }
    }

    static void fetch() throws Exception {
        try (Connection c = connect()) {
            c.setAutoCommit(false);
            PreparedStatement p = c.prepareStatement("select g, md5(g::text) as h from generate_series(1, ?) g order by g");
            p.setFetchSize(500);
            for (int round = 0; round < 2; round++) {
                p.setInt(1, 20000);
                long n = 0, sum = 0;
                int hash = 0;
                try (ResultSet rs = p.executeQuery()) {
                    while (rs.next()) {
                        n++;
                        sum += rs.getLong(1);
                        hash = 31 * hash + rs.getString(2).hashCode();
                    }
                }
                out("fetch", round, n, sum, hash);
            }
            c.commit();
            Statement s = c.createStatement();
            s.setFetchSize(100);
            s.setMaxRows(250);
            int n = 0;
            try (ResultSet rs = s.executeQuery("select * from customers order by id")) {
                ResultSetMetaData md = rs.getMetaData();
                out("fetch", "columns", md.getColumnCount(), md.getColumnName(1), md.getColumnTypeName(2));
                while (rs.next()) {
                    n++;
                }
            }
            out("fetch", "max rows", n);
            c.commit();
        }
    }

    static void errors() throws Exception {
        try (Connection c = connect()) {
            PreparedStatement p = c.prepareStatement("select 10 / ?");
            for (int i = -2; i <= 2; i++) {
                p.setInt(1, i);
                try (ResultSet rs = p.executeQuery()) {
                    rs.next();
                    out("errors", i, rs.getInt(1));
                } catch (SQLException e) {
                    out("errors", i, err(e));
                }
            }
            try {
                c.createStatement().executeQuery("select * from no_such_table");
            } catch (SQLException e) {
                out("errors", err(e));
            }
            Statement s = c.createStatement();
            boolean isRs = s.execute("select 1 as a; select 'two' as b; update customers set name = name where id < 0");
            int results = 0;
            while (true) {
                if (isRs) {
                    try (ResultSet rs = s.getResultSet()) {
                        rs.next();
                        out("errors", "multi", rs.getString(1));
                    }
                } else if (s.getUpdateCount() == -1) {
                    break;
                } else {
                    out("errors", "multi update", s.getUpdateCount());
                }
                results++;
                isRs = s.getMoreResults();
            }
            out("errors", "multi results", results);
        }
    }
}
