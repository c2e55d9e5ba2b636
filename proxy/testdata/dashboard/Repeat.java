import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;

/** Metabase's driver repeating one dashboard query with autocommit off. */
public class Repeat {
    public static void main(String[] args) throws Exception {
        int n = Integer.parseInt(args[1]);
        try (Connection c = DriverManager.getConnection(args[0])) {
            c.setAutoCommit(false);
            for (int i = 0; i < n; i++) {
                try (PreparedStatement ps = c.prepareStatement(
                        "-- Metabase:: userID: 1 queryType: MBQL queryHash: abc\n"
                                + "select region, sum(amount) as total from dash_sales where amount > ? group by region order by region")) {
                    ps.setInt(1, 0);
                    StringBuilder sb = new StringBuilder();
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            sb.append(rs.getString(1)).append('=').append(rs.getString(2)).append(';');
                        }
                    }
                    System.out.println(i + " " + sb);
                }
                if (i % 2 == 0) {
                    c.commit();
                } else {
                    c.rollback();
                }
            }
        }
    }
}
