// Every model family registers its node types here.
import "./linear.js";
import "./preprocessing.js";
import "./compose.js";
import "./trees.js";
import "./kernel.js";
import "./neighbors.js";
import "./naive_bayes.js";
import "./neural_network.js";
import "./cluster.js";
import "./ensemble.js";
import "./calibration.js";
import "./target.js";
import "./transforms.js";
import "./discriminant_analysis.js";
import "./boosting_libraries.js";
